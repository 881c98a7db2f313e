"""What this machine charges for the things a webhook does besides interpreting Python: a
hand-over between two threads, a PostgreSQL round trip, a SQLite statement and commit. Each
is timed alone, in CPU (this process's, user and system) and wall time.

`bench/load.py` finds our webhooks costlier per instruction at saturation than bare Flask's
(docs/benchmarks.md, round six): these prices say why. A webhook of ours waits on its
database several times, and each wait hands the interpreter to another thread and back; bare
Flask's webhook waits on nothing but its socket. Last, PostgreSQL's own commits are timed
under a write load like that of `bench/load.py`'s think-time phase: every webhook of ours
waits for one, so their p99 is a floor under the webhooks' p99.

    python bench/platform_costs.py
    python bench/platform_costs.py --pg-url postgresql://postgres@127.0.0.1:5432/meterline_load
    python bench/platform_costs.py --commit-seconds 0     # without the 30 s of commits

Nothing here is ours: two threads and a lock, libpq through psycopg's own wrapper
(`pgconn.exec_prepared`) and through a psycopg cursor, and the standard library's sqlite3 in
WAL mode with `synchronous=NORMAL`, as `storage.db` opens it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402


def timed(label: str, work: Callable[[], object], runs: int, per: int = 1) -> None:
    """Print CPU (user + system) and wall microseconds per run of `work` (per `per` of what
    one run does), the best of three batches."""
    work()
    best_cpu = best_wall = float("inf")
    for _ in range(3):
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(runs):
            work()
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    scale = 1e6 / runs / per
    print(f"  {label:<58} CPU {best_cpu * scale:7.1f} us   wall {best_wall * scale:7.1f} us")


def hand_over(runs: int) -> None:
    """Two threads handing a turn back and forth through two locks, as a webhook's thread and
    another do when one waits and the other runs: the price of one hand-over."""
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()
    total = runs * 3 + 1  # timed() runs the work once, then three batches

    def other() -> None:
        for _ in range(total):
            ping.acquire()
            pong.release()

    thread = threading.Thread(target=other, daemon=True)
    thread.start()

    def exchange() -> None:
        ping.release()
        pong.acquire()

    timed("a hand-over between two threads (lock ping-pong)", exchange, runs, per=2)
    thread.join(timeout=10)


def postgresql(url: str, runs: int) -> None:
    """A trivial prepared statement's round trip, by libpq alone and through a cursor."""
    import psycopg

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                           autocommit=True)  # fmt: skip
    conn.prepare_threshold = 0
    cursor = conn.cursor()
    try:
        cursor.execute("SELECT %s::int", [1])
        cursor.execute("SELECT %s::int", [1])  # now prepared on the server
        names = list(conn._prepared._names.values())  # psycopg's name for it
        pgconn = conn.pgconn

        def by_libpq() -> None:
            pgconn.exec_prepared(names[0], [b"1"]).get_value(0, 0)

        def by_cursor() -> None:
            cursor.execute("SELECT %s::int", [1])
            cursor.fetchone()

        def pipelined() -> None:
            with conn.pipeline():
                for _ in range(3):
                    conn.cursor().execute("SELECT %s::int", [1])

        timed("PostgreSQL round trip, libpq (psycopg's pgconn)", by_libpq, runs)
        timed("PostgreSQL round trip, a psycopg cursor", by_cursor, runs)
        timed("PostgreSQL pipeline of 3 statements, one round trip", pipelined, runs)
    finally:
        conn.close()


def commits_under_load(url: str, seconds: float) -> None:
    """PostgreSQL's own commit latency under a write load like the think-time phase's of
    `bench/load.py` (200 callers each answering every 2 s: about 100 webhooks a second, each
    committing a few KB): 10 connections, each inserting a 3 KB row in autocommit every 80 ms.
    Every webhook of ours waits for at least one such commit, so its p99 cannot be lower."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    table = "platform_costs_commits"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, a text, b text)")
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    row = ["x" * 1500, "y" * 1500]

    def writer() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            while time.monotonic() < stop:
                started = time.perf_counter()
                conn.execute(f"INSERT INTO {table} (a, b) VALUES (%s, %s)", row)
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.08)

    writers = [threading.Thread(target=writer) for _ in range(10)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}")
    latencies.sort()
    n = len(latencies)
    print(f"  PostgreSQL commits under load, {n / seconds:.0f} a second from 10 connections: "
          f"p50 {latencies[n // 2]:.1f} ms, p95 {latencies[int(n * 0.95)]:.1f} ms, "
          f"p99 {latencies[int(n * 0.99)]:.1f} ms, max {latencies[-1]:.1f} ms")  # fmt: skip


def sqlite(runs: int) -> None:
    """A read by primary key on its own (its own read transaction), and a write transaction
    of one UPDATE and one INSERT with its commit, on a WAL database."""
    folder = tempfile.mkdtemp(prefix="meterline-costs-")
    conn = sqlite3.connect(os.path.join(folder, "costs.db"), isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE calls (id INTEGER PRIMARY KEY, seq INTEGER, state TEXT)")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, call_id INTEGER, text TEXT)")
    conn.execute("CREATE INDEX ix_events_call ON events (call_id)")
    conn.executemany("INSERT INTO calls VALUES (?, 0, ?)", [(n, "x" * 1500) for n in range(1000)])
    n = [0]

    def read() -> None:
        conn.execute("SELECT seq, state FROM calls WHERE id = ?", [n[0] % 1000]).fetchone()

    def write() -> None:
        n[0] += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE calls SET seq = seq + 1, state = ? WHERE id = ?",
                     ["y" * 1500, n[0] % 1000])  # fmt: skip
        conn.execute("INSERT INTO events (call_id, text) VALUES (?, ?)", [n[0] % 1000, "z" * 300])
        conn.execute("COMMIT")

    timed("SQLite read by key, its own read transaction", read, runs)
    timed("SQLite BEGIN IMMEDIATE, UPDATE, INSERT, COMMIT", write, runs)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", default=load.PG_DEFAULT)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--commit-seconds", type=float, default=30,
                        help="seconds of PostgreSQL commits under load (0 skips)")  # fmt: skip
    opts = parser.parse_args()
    print(f"machine: {load.machine()}")
    hand_over(opts.runs)
    try:
        postgresql(opts.pg_url, opts.runs)
        if opts.commit_seconds:
            commits_under_load(opts.pg_url, opts.commit_seconds)
    except Exception as exc:  # noqa: BLE001 - a machine without the server still gets the rest
        print(f"  PostgreSQL skipped: {exc}")
    sqlite(opts.runs)


if __name__ == "__main__":
    main()

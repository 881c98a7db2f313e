"""What this machine charges for the things a webhook does besides interpreting Python: a
hand-over between two threads, a PostgreSQL round trip, a SQLite statement and commit. Each
is timed alone, in CPU (this process's, user and system) and wall time.

`bench/load.py` finds our webhooks costlier per instruction at saturation than bare Flask's
(docs/benchmarks.md, round six): these prices say why. A webhook of ours waits on its
database several times, and each wait hands the interpreter to another thread and back; bare
Flask's webhook waits on nothing but its socket.

    python bench/platform_costs.py
    python bench/platform_costs.py --pg-url postgresql://postgres@127.0.0.1:5432/meterline_load

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
    opts = parser.parse_args()
    print(f"machine: {load.machine()}")
    hand_over(opts.runs)
    try:
        postgresql(opts.pg_url, opts.runs)
    except Exception as exc:  # noqa: BLE001 - a machine without the server still gets the rest
        print(f"  PostgreSQL skipped: {exc}")
    sqlite(opts.runs)


if __name__ == "__main__":
    main()

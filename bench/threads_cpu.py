"""The app's CPU per webhook when several requests share a process or the machine, without
gunicorn or a socket: why a worker's webhook costs more than `bench/step_cpu.py`'s, and what
the webhooks' turns (ivr/voice/gate.py) save.

The calls of `bench/load.py` (prebuilt and signed) are handed straight to the WSGI app, in
one run each:
- one thread in one process (step_cpu's figure);
- `--threads` threads in one process, all at once, each its share of the calls;
- the same threads taking turns through the gate that `meterline serve`'s app has on SQLite;
- `--processes` single-threaded processes at once on one database, each its own app.

Each line is the process's (or each process's) CPU over its webhooks; the statements'
share (`StepStore._run`, the driver and the database library) is counted on each thread's
own clock.

`--sharing` (SQLite) asks instead what running beside each other costs processes that share
one database file, as gunicorn's workers do: one process alone, then `--processes` at once on
one database, then as many at once each on a copy of its own (the same rows), and bare Flask's
app (`bench/bare_flask.py`) alone and in as many processes. Each line gives the processes'
mean user and system CPU per webhook, from `os.times()`. A copy of its own keeps a process's
page cache: SQLite drops a connection's whole cache when another connection has written to
the database since its last transaction.

    python bench/threads_cpu.py                      # SQLite
    python bench/threads_cpu.py --database postgresql
    python bench/threads_cpu.py --sharing --rounds 3
    strace -f -c python bench/threads_cpu.py --sharing --line shared   # its system calls
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.bare_flask import create_bare_app  # noqa: E402
from bench.step_cpu import PUBLIC, scripts, seeded_line, serve  # noqa: E402

APOLOGY = load.APOLOGY.encode()


def counted_sql() -> list[float]:
    """Wrap StepStore._run to add each call's thread CPU to the returned total."""
    from storage.steps import StepStore

    total = [0.0]
    lock = threading.Lock()
    run = StepStore._run

    def timed(self: StepStore, *args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return run(self, *args, **kwargs)
        finally:
            spent = time.thread_time() - started
            with lock:
                total[0] += spent

    StepStore._run = timed  # type: ignore[method-assign]
    return total


def in_threads(app: Any, calls: list[list[dict[str, Any]]], threads: int,
               wrap: Callable[[Any], Any] = lambda app: app) -> float:  # fmt: skip
    """CPU seconds of this process while `threads` threads serve `calls` between them."""
    served = wrap(app)
    shares = [calls[n::threads] for n in range(threads)]

    def serve_share(share: list[list[dict[str, Any]]]) -> None:
        for call in share:
            serve(served, call)

    workers = [threading.Thread(target=serve_share, args=(s,)) for s in shares]
    started = time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.process_time() - started


def report(label: str, cpu: float, sql: float, webhooks: int) -> None:
    print(f"{label:<44} {cpu / webhooks * 1000:6.3f} ms CPU per webhook "
          f"(SQL {sql / webhooks * 1000:.3f})", flush=True)  # fmt: skip


def in_processes(calls: list[list[dict[str, Any]]], processes: int) -> None:
    """`processes` forked processes at once, each its own app and share of the calls."""
    reader, writer = os.pipe()
    for n in range(processes):
        if os.fork() == 0:  # the child: an app of its own, after the fork
            from ivr import create_app

            sql = counted_sql()
            app = create_app()
            share = calls[n::processes]
            serve(app, share[0])  # warm
            sql[0] = 0.0
            webhooks = sum(len(c) for c in share[1:])
            started = time.process_time()
            for call in share[1:]:
                serve(app, call)
            cpu = time.process_time() - started
            os.write(writer, f"{cpu / webhooks * 1000:.3f} {sql[0] / webhooks * 1000:.3f}\n"
                     .encode())  # fmt: skip
            os._exit(0)
    os.close(writer)
    for _ in range(processes):
        os.wait()
    with os.fdopen(reader) as lines:
        figures = [line.split() for line in lines]
    each = ", ".join(f"{cpu} ms (SQL {sql})" for cpu, sql in figures)
    print(f"{f'{processes} processes at once, one thread each':<44} {each}", flush=True)


def cpu_apart(calls: list[list[dict[str, Any]]], processes: int, database: str | None,
              own: bool = False) -> tuple[float, float]:  # fmt: skip
    """Mean user and system CPU ms per webhook of `processes` forked processes serving their
    shares of `calls` at once; each serves our app on the SQLite file `database` (`own`: on
    a copy of its own), or bare Flask's app if `database` is None."""
    ready_r, ready_w = os.pipe()
    start_r, start_w = os.pipe()
    result_r, result_w = os.pipe()
    for n in range(processes):
        if os.fork() == 0:  # the child: an app of its own, after the fork
            if database is None:
                app = create_bare_app(PUBLIC, 4)
            else:
                if own:
                    copy = f"{database}.{n}"
                    _fresh_copy(database, copy)
                    os.environ["METERLINE_DATABASE_URL"] = f"sqlite:///{copy}"
                from ivr import create_app

                app = create_app()
            share = calls[n::processes]
            serve(app, share[0])  # warm
            os.write(ready_w, b".")
            os.read(start_r, 1)  # all of them warm: they start together
            webhooks = sum(len(c) for c in share[1:])
            before = os.times()
            apologies = 0
            for call in share[1:]:
                apologies += sum(APOLOGY in body for body in serve(app, call))
            after = os.times()
            user = (after.user - before.user) / webhooks * 1000
            system = (after.system - before.system) / webhooks * 1000
            os.write(result_w, f"{user:.4f} {system:.4f} {apologies}\n".encode())
            os._exit(0)
    for fd in (ready_w, start_r, result_w):
        os.close(fd)
    arrived = 0
    while arrived < processes:
        ready = os.read(ready_r, processes)
        if not ready:  # every child gone (or failed) before it was warm
            raise SystemExit("a process failed before it started serving")
        arrived += len(ready)
    os.write(start_w, b"." * processes)
    for _ in range(processes):
        os.wait()
    with os.fdopen(result_r) as lines:
        figures = [tuple(float(f) for f in line.split()) for line in lines]
    for fd in (ready_r, start_w):
        os.close(fd)
    if len(figures) != processes or any(f[2] for f in figures):
        raise SystemExit(f"a process failed or a caller heard an apology: {figures}")
    return (sum(f[0] for f in figures) / processes, sum(f[1] for f in figures) / processes)


def _fresh_copy(source: str, target: str) -> None:
    """`target` a copy of the SQLite file `source`, without a WAL left from an earlier copy
    (which SQLite would apply to the new one)."""
    for leftover in (f"{target}-wal", f"{target}-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    shutil.copyfile(source, target)


def sharing(opts: argparse.Namespace) -> None:
    """`--sharing`: one process alone, processes on one database, each on its own copy, and
    bare Flask alone and in as many processes; `--rounds` times, in that order."""
    n = opts.processes
    callers = [load.caller_number(k) for k in range(n * (opts.calls + 1))]
    url = seeded_line("sqlite", opts.pg_url, len(callers), 2, "sharing")
    database = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every row in the file itself
    conn.close()
    seeded = f"{database}.seeded"
    shutil.copyfile(database, seeded)
    calls = scripts(callers, 2)
    bare_calls = scripts([f"+7000{k:07d}" for k in range(n * (opts.calls + 1))], 2)
    print(f"sqlite: {opts.calls} calls per process, 6 webhooks each; CPU ms per webhook, "
          f"each line the mean of its processes", flush=True)  # fmt: skip
    lines = {
        "alone": ("ours, one process alone", calls[: opts.calls + 1], 1, database, False),
        "shared": (f"ours, {n} processes at once, one database", calls, n, database, False),
        "copies": (f"ours, {n} processes at once, a copy each", calls, n, database, True),
        "bare-alone": ("bare Flask, one process alone", bare_calls[: opts.calls + 1], 1, None,
                       False),
        "bare": (f"bare Flask, {n} processes at once", bare_calls, n, None, False),
    }  # fmt: skip
    chosen = list(lines) if opts.line == "all" else [opts.line]
    for round_ in range(1, opts.rounds + 1):
        for label, work, count, db, own in (lines[name] for name in chosen):
            if db is not None:  # every line places the same calls on the seeded rows
                _fresh_copy(seeded, db)
            user, system = cpu_apart(work, count, db, own)
            print(f"round {round_}  {label:<44} user {user:6.3f}  system {system:6.3f}  "
                  f"total {user + system:6.3f}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=load.PG_DEFAULT)
    parser.add_argument("--calls", type=int, default=400, help="calls per line (400)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--sharing", action="store_true",
                        help="SQLite: processes on one database against a copy each")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="with --sharing (1)")
    parser.add_argument("--line", default="all",
                        choices=["all", "alone", "shared", "copies", "bare-alone", "bare"],
                        help="with --sharing: only this line (for strace -f -c, say)")  # fmt: skip
    opts = parser.parse_args()
    if opts.sharing:
        sharing(opts)
        return
    lines = 4  # one thread, threads, threads taking turns, processes: fresh callers each
    per = opts.calls + 1
    callers = [load.caller_number(n) for n in range(per * lines)]
    seeded_line(opts.database, opts.pg_url, len(callers), 2, "threadscpu")
    calls = [scripts(callers[k * per : (k + 1) * per], 2) for k in range(lines)]
    print(f"{opts.database}: {opts.calls} calls per line, 6 webhooks each", flush=True)
    in_processes(calls[3], opts.processes)  # first: the children fork before any thread

    from ivr import create_app
    from ivr.voice.gate import WebhookGate

    sql = counted_sql()
    app = create_app()
    serve(app, calls[0][0])  # warm
    for label, batch, threads, wrap in [
        ("one thread", calls[0][1:], 1, None),
        (f"{opts.threads} threads at once", calls[1], opts.threads, None),
        (f"{opts.threads} threads taking turns", calls[2], opts.threads,
         WebhookGate(wait=5).around),
    ]:  # fmt: skip
        sql[0] = 0.0
        cpu = in_threads(app, batch, threads, wrap or (lambda app: app))
        report(label, cpu, sql[0], sum(len(c) for c in batch))


if __name__ == "__main__":
    main()

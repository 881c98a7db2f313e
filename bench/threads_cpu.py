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

    python bench/threads_cpu.py                      # SQLite
    python bench/threads_cpu.py --database postgresql
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402
from bench.step_cpu import scripts, seeded_line, serve  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=load.PG_DEFAULT)
    parser.add_argument("--calls", type=int, default=400, help="calls per line (400)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=4)
    opts = parser.parse_args()
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

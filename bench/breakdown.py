"""Where a gunicorn worker's CPU goes, per webhook: run a server under this wrapper and each
worker writes its own figures (`bench/load.py --breakdown` does it for every target).

    python bench/breakdown.py OUT_DIR -m ivr serve --port 5001
    python bench/breakdown.py OUT_DIR bench/bare_flask.py --port 5002

Each worker counts, with its threads' own CPU clocks (`time.thread_time`):
- `handle`: gunicorn's handling of a connection in a pool thread (parsing, the app, writing);
- `app`: the WSGI app itself (for ours from the body guard in; bare Flask has no guard, so
  its `app` is 0 and its whole request is in `handle`);
- `sql`: our hot path's statements (`StepStore._run`, each call a batch: one round trip on
  PostgreSQL), the driver's work and SQLite's;
- `process`: the whole worker, its main thread (accepting, polling) and every other thread;
- context switches of all its threads, voluntary (waits: the GIL, locks, sockets) and not.

The figures are written as JSON, once a second and at exit, to OUT_DIR/worker-PID.json. The
wrapper costs two clock reads and a lock per counted call, in ours and in bare Flask alike.
The hooks are plain wrappers (no profiler): nothing is sampled, nothing is guessed.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_totals = {"handle": 0.0, "app": 0.0, "sql": 0.0, "requests": 0, "sql_batches": 0}
_lock = threading.Lock()


def _counted(owner: Any, name: str, key: str, count: str | None = None) -> None:
    """Replace `owner.name` by a wrapper adding its thread CPU to `key` (and 1 to `count`)."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.thread_time() - started
            with _lock:
                _totals[key] += spent
                if count:
                    _totals[count] += 1

    setattr(owner, name, wrapper)


def _switches() -> tuple[int, int]:
    voluntary = involuntary = 0
    for task in os.listdir("/proc/self/task"):
        try:
            lines = Path(f"/proc/self/task/{task}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("voluntary_ctxt_switches"):
                voluntary += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                involuntary += int(line.split()[1])
    return voluntary, involuntary


def _writer(out: Path) -> Callable[[], None]:
    def write() -> None:
        usage = os.times()
        voluntary, involuntary = _switches()
        with _lock:
            figures = dict(_totals)
        figures.update(process=usage.user + usage.system, voluntary=voluntary,
                       involuntary=involuntary)  # fmt: skip
        path = out / f"worker-{os.getpid()}.json"
        path.with_suffix(".tmp").write_text(json.dumps(figures))
        path.with_suffix(".tmp").replace(path)

    return write


def _in_worker(out: Path) -> None:
    """After the fork: the worker's own totals from zero, written once a second."""
    for key in _totals:
        _totals[key] = 0
    write = _writer(out)

    def loop() -> None:
        while True:
            time.sleep(1)
            write()

    threading.Thread(target=loop, name="breakdown", daemon=True).start()


def install(out: Path) -> None:
    """Wrap gunicorn's connection handling, our app's entry and our hot path's statements."""
    import gunicorn.workers.gthread as gthread

    _counted(gthread.ThreadWorker, "handle", "handle", "requests")
    try:
        from ivr import guards
        from storage import steps
    except ImportError:  # not our tree
        pass
    else:
        _counted(guards.BodyDeadline, "__call__", "app")
        _counted(steps.StepStore, "_run", "sql", "sql_batches")
    os.register_at_fork(after_in_child=lambda: _in_worker(out))


def read(out: Path) -> dict[str, float]:
    """Every worker's figures in `out`, summed."""
    total: dict[str, float] = {}
    for path in out.glob("worker-*.json"):
        for key, value in json.loads(path.read_text()).items():
            total[key] = total.get(key, 0.0) + value
    return total


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    install(out)
    if sys.argv[2] == "-m":
        sys.argv = [sys.argv[3], *sys.argv[4:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[2:]
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()

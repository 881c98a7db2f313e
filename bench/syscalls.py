"""System calls per webhook of a server's workers at saturation, ours or the floor, on SQLite.

`bench/load.py` prints how much of each server's CPU is spent in the kernel; this says on
what. The server (`meterline serve`, or `bench/floor_flask.py` with `--floor`) runs under the
load's gunicorn options; after a warm-up, `strace -f -c` is attached to its workers for one
saturation phase of the load's client (`--calls` calls, 200 at once, two meters each). The
counts are exact; strace's times are not (tracing slows each call many times over), so read
them only against each other.

    python bench/syscalls.py
    python bench/syscalls.py --floor --calls 400

Needs strace (Debian: strace), and the right to trace one's own children (ptrace_scope ≤ 1).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load  # noqa: E402


def main() -> None:
    """Serve, warm up, trace one saturation phase, print the counts per webhook."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--floor", action="store_true", help="the floor, not meterline serve")
    parser.add_argument("--calls", type=int, default=800, help="calls at saturation (800)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    opts = parser.parse_args()
    if shutil.which("strace") is None:
        sys.exit("strace is not installed (apt-get install strace)")
    if not 1 <= opts.calls <= 5000:
        sys.exit("--calls must be 1..5000")
    server_opts = argparse.Namespace(
        workers=opts.workers, threads=opts.threads, meters=2, breakdown=False, client="raw",
        processes=2, keep_alive=False,
    )  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="meterline-syscalls-"))
    url = f"sqlite:///{workdir / 'calls.db'}"
    warm = load.Load(opts.workers * 4, opts.workers * 2, 0.0, 0.0)
    needed = warm.calls + opts.calls
    if opts.floor:  # its own table in its own file, as in load.py's --floor rounds
        server = load.floor_server(url, server_opts, workdir)
    else:
        engine = load.prepare(url)
        load.seed(engine, needed, 2)
        engine.dispose()
        server = load.our_server(url, server_opts, workdir)
    label = "floor on sqlite" if opts.floor else "meterline on sqlite"
    callers = (load.caller_number(n) for n in range(needed))
    counts = workdir / "strace.txt"
    try:
        load.drive(f"{label}: warm-up", server, callers, warm, server_opts)
        found = subprocess.run(["pgrep", "-P", str(server.process.pid)],
                               capture_output=True, text=True, check=True)  # fmt: skip
        workers = found.stdout.split()
        argv = ["strace", "-f", "-c", "-o", str(counts)]
        for pid in workers:
            argv += ["-p", pid]
        tracer = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # strace attaches to every thread of every worker
        figures = load.drive(f"{label}: saturation", server, callers,
                             load.Load(opts.calls, 200, 0.0, 0.0), server_opts)  # fmt: skip
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
    finally:
        server.stop()
    if figures.errors or figures.apologies:  # counts of a run that went wrong say nothing
        sys.exit(f"{label}: {len(figures.errors)} client errors, {figures.apologies} "
                 f"apologies (logs in {workdir})")  # fmt: skip
    webhooks = max(1, len(figures.latencies))
    print(f"{label}: {webhooks} webhooks traced, {len(figures.errors)} client errors, "
          f"{figures.apologies} apologies; strace -c of {len(workers)} workers "
          f"({opts.workers} x {opts.threads} threads)")  # fmt: skip
    print(f"  {'system call':<18} {'a webhook':>10} {'traced µs a webhook':>20}")
    for line in counts.read_text().splitlines():
        parts = line.split()
        # strace -c rows: % time, seconds, usecs/call, calls, [errors,] syscall
        if len(parts) >= 5 and parts[3].isdigit() and parts[-1] != "total":
            calls, seconds = int(parts[3]), float(parts[1])
            print(f"  {parts[-1]:<18} {calls / webhooks:10.2f} {seconds / webhooks * 1e6:20.1f}")


if __name__ == "__main__":
    main()

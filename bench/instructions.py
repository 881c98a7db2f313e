"""Instructions per webhook of a real gunicorn worker, ours and bare Flask's, counted by
callgrind: a figure beside issue 9's CPU-time ratio that the machine's load and noise do not
move (the ratio itself stays CPU time, measured by `bench/load.py`).

`bench/load.py`'s ratio is CPU time, which on a shared 2-core machine swings by a third from
run to run (bare Flask alone gave 0.98-1.57 ms in one hour of one day). A count of executed
instructions is the same in every run of the same code on the same inputs, so it tells
whether a change made the work smaller, and how much of the CPU-time ratio is work and how
much is the cost of each instruction (cache misses of a larger request on shared cores,
which callgrind does not see).

Per target, under `valgrind --tool=callgrind --trace-children=yes`:
1. the server (`meterline serve`, or `bench/bare_flask.py`, both with the same gunicorn
   options, one worker of `--threads` threads) starts and answers a warm-up of 3 calls;
2. the worker's counters are zeroed (`callgrind_control -z`), `--calls` calls are placed one
   at a time over loopback (bench/load.py's calls: incoming, a value and its confirmation
   for each of 2 meters, the status callback), and the counters are dumped;
3. every reply is checked, and on our server every reading the callers confirmed is counted
   in the database.

Servers run with PYTHONHASHSEED=0, so that dict and set orders are the same in every run.

The count covers the worker's whole process (gunicorn's loop and threads, Flask, our app,
the driver and SQLite; not PostgreSQL's backends, nor the master, which does no request
work). Under callgrind a server runs about 50 times slower: about 2 minutes per target at
the default 20 calls.

    python bench/instructions.py                          # SQLite, and bare Flask
    python bench/instructions.py --database postgresql    # its database must end in "load"

`--in-process` counts the app alone, without gunicorn or a socket, as `bench/step_cpu.py` runs
it: the same calls handed straight to the WSGI app in one process, counted the same way
(zeroed after a warm-up call, dumped after the last).

    python bench/instructions.py --in-process

Needs valgrind (Debian: `apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import load, webhook_client  # noqa: E402

METERS = 2
WEBHOOKS_PER_CALL = 2 + 2 * METERS
WARM_UP = 3


class Counted:
    """One server under callgrind, on a free loopback port."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, workdir: Path):
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        self.out = workdir / "callgrind"
        command = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                   f"--callgrind-out-file={self.out}.%p", *argv]  # fmt: skip
        self.log = workdir / "server.log"
        self._log = self.log.open("wb")
        env = {**env, "PYTHONHASHSEED": "0"}  # the same dict and set orders in every run
        self.process = subprocess.Popen(command, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT, cwd=ROOT)  # fmt: skip
        deadline = time.monotonic() + 900  # imports run 50 times slower too
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"server exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                requests.get(f"http://127.0.0.1:{port}/voice/status", timeout=10).close()
                break
            except requests.RequestException:
                time.sleep(1)
        else:
            self.stop()
            sys.exit("server did not start in 15 minutes")
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        workers = children.read_text().split()
        if len(workers) != 1:
            self.stop()
            sys.exit(f"expected one worker, found {len(workers)}")
        self.worker = int(workers[0])

    def control(self, option: str) -> None:
        """`callgrind_control` on the worker; it answers once the worker has acted on it."""
        subprocess.run(["callgrind_control", option, str(self.worker)], check=True,
                       capture_output=True, timeout=600)  # fmt: skip

    def dumped(self) -> int:
        """The instructions counted in the worker's first dump (since the counters were
        zeroed)."""
        return _dumped(Path(f"{self.out}.{self.worker}.1"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def place(port: int, callers: list[str]) -> int:
    """Each caller's call, one webhook at a time, each on a new connection; the readings the
    callers heard accepted."""
    public = f"http://127.0.0.1:{port}"
    heard = 0
    for caller in callers:
        hooks = webhook_client.call_script(public, f"127.0.0.1:{port}", load.TOKEN, caller,
                                           METERS, keep_alive=False)  # fmt: skip
        for index, hook in enumerate(hooks):
            with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
                sock.sendall(hook.request)
                status, body = webhook_client._Reply.read(sock)
            if status != 200 or (hook.expect and hook.expect not in body):
                sys.exit(f"webhook {index} of {caller}: HTTP {status}: {body[:200]!r}")
            heard += body.count(webhook_client.STORED)
    return heard


def count(argv: list[str], env: dict[str, str], port: int, workdir: Path, callers: list[str],
          ) -> tuple[int, int]:  # fmt: skip
    """(instructions over the calls after the warm-up, readings heard accepted in them)."""
    server = Counted(argv, env, port, workdir)
    try:
        place(port, callers[:WARM_UP])
        server.control("-z")
        heard = place(port, callers[WARM_UP:])
        server.control("-d")
        return server.dumped(), heard
    finally:
        server.stop()


def bare(opts: argparse.Namespace, workdir: Path) -> int:
    port = load.free_port()
    argv = [sys.executable, str(ROOT / "bench" / "bare_flask.py"), "--port", str(port),
            "--workers", "1", "--threads", str(opts.threads),
            "--steps", str(2 * METERS)]  # fmt: skip
    callers = [f"+7000{n:07d}" for n in range(WARM_UP + opts.calls)]
    instructions, _ = count(argv, dict(os.environ), port, workdir, callers)
    return instructions


def ours(opts: argparse.Namespace, workdir: Path) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    url = (opts.pg_url if opts.database == "postgresql"
           else f"sqlite:///{workdir / 'instructions.db'}")  # fmt: skip
    callers = [load.caller_number(n) for n in range(WARM_UP + opts.calls)]
    engine = load.prepare(url)
    load.seed(engine, len(callers), METERS)
    port = load.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "TWILIO_"))}
    env.update(load.line_settings(url, f"http://127.0.0.1:{port}", workdir))
    argv = [sys.executable, "-m", "ivr", "serve", "--port", str(port), "--workers", "1",
            "--threads", str(opts.threads)]  # fmt: skip
    instructions, heard = count(argv, env, port, workdir, callers)
    stored, doubled = load.count_stored(engine)
    engine.dispose()
    expected = len(callers) * METERS
    if heard != opts.calls * METERS or stored != expected or doubled:
        sys.exit(f"readings: {stored} stored ({doubled} twice), {expected} expected; "
                 f"{heard} heard accepted in the counted calls")  # fmt: skip
    return instructions


def in_process_child(which: str, calls: int, signals: Path) -> None:
    """Under callgrind: warm the app with one call, wait for the counters to be zeroed
    (the file `go` in `signals`), serve `calls` calls, say so (`served`) and wait for the
    dump (`end`). The waits sleep in short steps: a process asleep in one long system call
    would not act on `callgrind_control` until it woke."""
    from bench.bare_flask import create_bare_app
    from bench.step_cpu import PUBLIC, scripts, seeded_line, serve

    if which == "ours":
        callers = [load.caller_number(n) for n in range(calls + 1)]
        seeded_line("sqlite", load.PG_DEFAULT, len(callers), METERS, "instructions")
        from ivr import create_app

        app = create_app()
    else:
        callers = [f"+7000{n:07d}" for n in range(calls + 1)]
        app = create_bare_app(PUBLIC, 2 * METERS)
    prepared = scripts(callers, METERS)
    serve(app, prepared[0])
    (signals / "ready").touch()
    _wait_for(signals / "go")
    for call in prepared[1:]:
        serve(app, call)
    (signals / "served").touch()
    _wait_for(signals / "end")


def _wait_for(path: Path, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"no {path.name} in {timeout:.0f} s")
        time.sleep(0.01)


def in_process(which: str, calls: int, workdir: Path) -> int:
    """The app's instructions over `calls` calls handed straight to it (after one warm-up),
    counted between zeroing and dumping, as on the server."""
    signals = workdir / which
    signals.mkdir(parents=True, exist_ok=True)
    out = signals / "callgrind"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", sys.executable,
            __file__, "--child", which, "--calls", str(calls),
            "--signals", str(signals)]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict and set orders each run
    log = signals / "log"
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env,
                                   cwd=ROOT)  # fmt: skip
        try:
            for name, option in (("ready", "-z"), ("served", "-d")):
                while not (signals / name).exists():
                    if process.poll() is not None:
                        failed = log.read_text(errors="replace")[-2000:]
                        sys.exit(f"{which} under callgrind failed: {failed}")
                    time.sleep(0.2)
                subprocess.run(["callgrind_control", option, str(process.pid)], check=True,
                               capture_output=True, timeout=600)  # fmt: skip
                (signals / ("go" if name == "ready" else "end")).touch()
            process.wait(timeout=600)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return _dumped(Path(f"{out}.{process.pid}.1"))


def _dumped(dump: Path) -> int:
    """The instructions counted in a callgrind dump."""
    match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
    if match is None:
        sys.exit(f"no total in {dump}")
    return int(match.group(1))


@contextmanager
def workspace(keep: Path | None) -> Iterator[str]:
    """`keep` (made if need be), or a temporary folder removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield str(keep)
        return
    with tempfile.TemporaryDirectory(prefix="meterline-instructions-") as tmp:
        yield tmp


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=load.PG_DEFAULT)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-bare", action="store_true")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the callgrind files in DIR (for callgrind_annotate)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="the app alone, without gunicorn or a socket (SQLite)",
    )
    parser.add_argument("--child", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--signals", type=Path, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        in_process_child(opts.child, opts.calls, opts.signals)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    if opts.database == "postgresql":
        if not (make_url(opts.pg_url).database or "").endswith("load"):
            sys.exit("refusing to empty a database whose name does not end in 'load'")
    if opts.in_process:
        print(
            f"in process: {opts.calls} calls one after another, "
            f"{opts.calls * WEBHOOKS_PER_CALL} webhooks, under callgrind",
            flush=True,
        )
        with workspace(opts.keep) as tmp:
            webhooks = opts.calls * WEBHOOKS_PER_CALL
            base = None if opts.no_bare else in_process("bare", opts.calls, Path(tmp)) / webhooks
            if base:
                print(f"  bare Flask           {base:>12,.0f} instructions per webhook",
                      flush=True)  # fmt: skip
            mine = in_process("ours", opts.calls, Path(tmp)) / webhooks
            ratio = f"  {mine / base:.2f} x bare" if base else ""
            print(f"  meterline, sqlite    {mine:>12,.0f} instructions per webhook{ratio}")
        return
    webhooks = opts.calls * WEBHOOKS_PER_CALL
    print(f"{opts.calls} calls one at a time, {webhooks} webhooks, one worker of "
          f"{opts.threads} threads, under callgrind", flush=True)  # fmt: skip
    with workspace(opts.keep) as tmp:
        base = None
        if not opts.no_bare:
            base = bare(opts, Path(tmp) / "bare")
            print(f"  bare Flask           {base / webhooks:>12,.0f} instructions per webhook",
                  flush=True)  # fmt: skip
        mine = ours(opts, Path(tmp) / "ours")
        ratio = f"  {mine / base:.2f} x bare" if base else ""
        print(f"  meterline, {opts.database:<10}{mine / webhooks:>12,.0f} instructions per "
              f"webhook{ratio}")  # fmt: skip


if __name__ == "__main__":
    main()

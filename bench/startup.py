"""Start-up cost of the `meterline` command against `flask --help`, in the same interpreter.

Each command runs `--runs` times, the commands interleaved (so a busy moment on a shared
machine hits all of them alike); printed: median and best wall time, peak RSS, the ratio of
medians to `flask --help`, and which heavy modules each one imported (none should: no app is
built for `--help` or `speech parse`).

    python bench/startup.py
    python bench/startup.py --runs 20
    python bench/startup.py --tree /path/to/another/checkout   # e.g. before a change
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "alembic", "gunicorn", "requests", "argon2", "vosk", "twilio", "psycopg")
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "flask --help": ["-m", "flask", "--help"],
    "meterline --help": ["-m", "ivr", "--help"],
    'meterline speech parse "сто"': ["-m", "ivr", "speech", "parse", "сто"],
}


def run_once(args: list[str], cwd: str, tree: Path = ROOT) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )  # fmt: skip
    _, _, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss


def heavy_imports(args: list[str], cwd: str, tree: Path = ROOT) -> list[str]:
    """Which of HEAVY the command imports (from `python -X importtime`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )  # fmt: skip
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return [name for name in HEAVY if name in loaded]


def main() -> None:
    """Time every command, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to time")
    opts = parser.parse_args()
    # An empty directory: `flask --help` finds no app there, and ours reads no stray .env.
    cwd = tempfile.mkdtemp(prefix="meterline-startup-")
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    rss: dict[str, int] = dict.fromkeys(COMMANDS, 0)
    for args in COMMANDS.values():
        run_once(args, cwd, opts.tree)  # warm the page cache and .pyc files
    for _ in range(opts.runs):
        for name, args in COMMANDS.items():
            seconds, peak = run_once(args, cwd, opts.tree)
            times[name].append(seconds)
            rss[name] = max(rss[name], peak)
    print(f"Python {sys.version.split()[0]} ({sys.executable}), {opts.runs} runs each, "
          f"interleaved, code from {opts.tree}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    base = statistics.median(times["flask --help"])
    print(
        f"{'command':<30} {'median':>8} {'best':>8} {'x flask':>8} {'peak RSS':>9}  heavy imports"
    )
    for name, args in COMMANDS.items():
        median = statistics.median(times[name])
        heavy = ", ".join(heavy_imports(args, cwd, opts.tree)) or "none"
        print(f"{name:<30} {median * 1000:>6.0f} ms {min(times[name]) * 1000:>5.0f} ms "
              f"{median / base:>8.2f} {rss[name] / 1024:>6.0f} MiB  {heavy}")  # fmt: skip


if __name__ == "__main__":
    main()

"""N simultaneous real calls through Asterisk and `meterline agi`, against one call alone.

SIPp places `--calls` calls into the test Asterisk (the cached sid chroot of tests/asterisk,
loopback only) within one second; each caller's number is bound to its own account with one
meter, and each call keys a value with `*` and `#` and confirms it, by RFC 4733 events from a
generated pcap. The same call placed alone first is the ceiling. Printed side by side:

- calls SIPp saw complete, readings stored (each exactly once, with the keyed value);
- call length as meterline recorded it (started_at → ended_at), p50 / p99 / max;
- the slowest step of any call in the step driver (from `meterline agi`'s per-call log line),
  which is what a caller waits for between a key and the next prompt;
- CPU seconds used by `meterline agi` and by Asterisk, and `meterline agi`'s peak RSS.

A call's keys come at fixed times (barge-in: they cut the prompts short); a step that took
longer than the pause before the next answer would lose its keys and the reading, so "stored
= calls" with the right values is itself the check that no call delayed another.

    python bench/agi_load.py                      # 200 calls, SQLite
    python bench/agi_load.py --calls 50 --database-url postgresql://postgres@127.0.0.1:5432/meterline_load

Needs root (the chroot), sipp, espeak-ng and sox, as the tests do.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from ivr.agi.render import render_all  # noqa: E402
from ivr.agi.vocabulary import text_pieces  # noqa: E402
from ivr.prompts import Catalogue  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Base, Call, Reading  # noqa: E402
from tests.asterisk.pbx import Pbx, build_chroot, free_port  # noqa: E402
from tests.asterisk.rtp import write_pcap  # noqa: E402
from tests.asterisk.sipp import place_calls  # noqa: E402
from tests.support.data import add_account, add_meter  # noqa: E402
from tests.support.server import server_env  # noqa: E402

KEYS = [(3.0, "112*5#"), (6.3, "1")]  # value at 3 s, confirm 1.5 s after its '#'
VALUE = Decimal("112.5")


def seed(engine: Engine, calls: int) -> list[str]:
    """One account per caller, each with one hot-water meter; the callers' numbers."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    numbers = [f"+7921{n:07d}" for n in range(1, calls + 1)]
    now = datetime.now(UTC)
    with Session(engine) as session:
        for n, phone in enumerate(numbers, start=1):
            account = add_account(session, number=f"{2000000 + n}", phones=(phone,))
            add_meter(session, account, serial=f"B{n:05d}", now=now)
        session.commit()
    return numbers


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def asterisk_pid(pbx: Pbx) -> int:
    """The asterisk process itself (chroot execs it in place)."""
    assert pbx.process is not None
    return pbx.process.pid


def run_round(  # type: ignore[type-arg]
    engine: Engine, pbx: Pbx, agi_pid: int, log: Path, calls: int, work: Path, rate: int | None
) -> dict:
    """Place `calls` calls (`rate` a second; default all within one second); what happened."""
    numbers = seed(engine, calls)
    pcap = work / "keys.pcap"
    write_pcap(pcap, KEYS, seconds=KEYS[-1][0] + 10)
    log_start = log.stat().st_size
    cpu_agi, cpu_ast = cpu_seconds(agi_pid), cpu_seconds(asterisk_pid(pbx))
    started = time.monotonic()
    run = place_calls(work, pbx.sip_port, numbers, pcap, timeout_s=180, rate=rate)
    wall = time.monotonic() - started
    time.sleep(2)  # the last closes reach the database
    cpu_agi, cpu_ast = cpu_seconds(agi_pid) - cpu_agi, cpu_seconds(asterisk_pid(pbx)) - cpu_ast
    with Session(engine) as session:
        readings = list(session.scalars(select(Reading).where(Reading.source == "ivr")))
        lengths = [
            (c.ended_at - c.started_at).total_seconds()
            for c in session.scalars(select(Call))
            if c.ended_at is not None
        ]
        outcomes = [c.outcome for c in session.scalars(select(Call))]
    per_call = log.read_text(errors="replace")[log_start:]
    slowest = [float(m) for m in re.findall(r"closed: \d+ steps, slowest ([\d.]+) s", per_call)]
    ok = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", run.output)
    lengths.sort()
    return {
        "calls": calls,
        "sipp_ok": int(ok[1]) if ok else -1,
        "stored": sum(1 for r in readings if r.value == VALUE and r.status == "accepted"),
        "twice": len(readings) - len({r.meter_id for r in readings}),
        "completed": outcomes.count("completed"),
        "p50": _pct(lengths, 0.5),
        "p99": _pct(lengths, 0.99),
        "max": lengths[-1] if lengths else float("nan"),
        "step_p50": _pct(slowest, 0.5),
        "step_p99": _pct(slowest, 0.99),
        "step_max": max(slowest) if slowest else float("nan"),
        "cpu_agi": cpu_agi,
        "cpu_asterisk": cpu_ast,
        "wall": wall,
    }


def _pct(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument(
        "--rate", type=int, default=None, help="calls started per second (default: all in 1 s)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agi-load-"))
    url = args.database_url or f"sqlite:///{work / 'load.db'}"
    if url.startswith("postgresql") and not url.rsplit("/", 1)[-1].endswith("load"):
        sys.exit("the PostgreSQL database is emptied: its name must end in 'load'")
    upgrade(url)
    engine = make_engine(url)
    rtp = random.randrange(20000, 40000, 2000)
    pbx = Pbx(
        build_chroot(), f"meterline-bench-{os.getpid()}", free_port(), free_port(), rtp, free_port()
    )
    pbx.configure()
    pieces = text_pieces(
        Catalogue.load(), ["г. Вологда, ул. Ленина, д. 5, кв. 12"], ["кухня"], [(0, 0), (23, 59)]
    )
    render_all(pieces, pbx.host_home / "sounds", "ulaw", ("espeak-ng", "-v", "ru", "--stdout"))
    subprocess.run(
        ["chroot", str(pbx.chroot), "chown", "-R", "asterisk:asterisk", pbx.sounds], check=True
    )
    pbx.start()
    log = work / "agi.log"
    env = server_env(
        url,
        free_port(),
        {"METERLINE_ASTERISK_SOUNDS": pbx.sounds, "METERLINE_CALLS_PER_HOUR": "10000"},
    )
    with log.open("wb") as out:
        agi = subprocess.Popen(
            [sys.executable, "-m", "ivr", "agi", "--listen", f"127.0.0.1:{pbx.agi_port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", pbx.agi_port), 0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        rounds = [run_round(engine, pbx, agi.pid, log, 1, work, None)]
        rounds.append(run_round(engine, pbx, agi.pid, log, args.calls, work, args.rate))
        rss = peak_rss_mb(agi.pid)
    finally:
        agi.terminate()
        agi.wait(15)
        pbx.stop()
        engine.dispose()
    spread = f"{args.rate}/s" if args.rate else "within 1 s"
    print(f"{os.cpu_count()} cores, {url.split(':')[0]}, keys {KEYS}, starts {spread}")
    print(f"{'':34}{'1 call (ceiling)':>18}{f'{args.calls} calls':>16}")
    rows = [
        ("calls SIPp saw complete", "sipp_ok", "{:d}"),
        ("readings stored (112.5, accepted)", "stored", "{:d}"),
        ("readings stored twice", "twice", "{:d}"),
        ("calls completed (meterline)", "completed", "{:d}"),
        ("call length p50, s", "p50", "{:.2f}"),
        ("call length p99, s", "p99", "{:.2f}"),
        ("call length max, s", "max", "{:.2f}"),
        ("a call's slowest step p50, s", "step_p50", "{:.3f}"),
        ("a call's slowest step p99, s", "step_p99", "{:.3f}"),
        ("slowest step of all, s", "step_max", "{:.3f}"),
        ("meterline agi CPU, s", "cpu_agi", "{:.2f}"),
        ("asterisk CPU, s", "cpu_asterisk", "{:.2f}"),
        ("wall time of the round, s", "wall", "{:.1f}"),
    ]
    for label, key, fmt in rows:
        print(f"{label:34}{fmt.format(rounds[0][key]):>18}{fmt.format(rounds[1][key]):>16}")
    print(f"meterline agi peak RSS: {rss:.0f} MB")


if __name__ == "__main__":
    main()

"""Try the Asterisk line by hand, on one machine: `python -m tests.asterisk.try_line`.

Builds (or reuses) the sid chroot, loads one account (phone +79211234567, a hot-water and a
heating meter) into a database, renders the prompts with `meterline prompts render`, starts a
loopback-only Asterisk as the `asterisk` user and `meterline agi`, then places real SIP calls
with SIPp, keys sent as RFC 4733 events: one that keys and confirms both meters, one that
hangs up before confirming, and one handed to a `meterline agi` that does not allow Asterisk's
address. It prints what happened and how to look at it in the operator view.

    python -m tests.asterisk.try_line                        # a fresh SQLite file
    python -m tests.asterisk.try_line --database-url postgresql://meterline@127.0.0.1/meterline

Needs root, debootstrap, sip-tester, espeak-ng and sox (see docs/asterisk.md).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import Call, Flag, Reading
from tests.asterisk.conftest import start_agi
from tests.asterisk.pbx import GUARDED_LINE, Pbx, build_chroot, free_port
from tests.asterisk.rtp import write_pcap
from tests.asterisk.sipp import place_calls
from tests.asterisk.test_asterisk_calls import answers_at
from tests.support.data import add_account, add_meter
from tests.support.server import server_env


def meterline(env: dict[str, str], *args: str) -> str:
    """Run a `meterline` command as a user would; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "ivr", *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout + done.stderr


def sip_call(work: Path, pbx: Pbx, name: str, keys: list[tuple[float, str]], **kw: object) -> str:
    """One SIPp call from the account's phone; SIPp's verdict."""
    folder = work / name
    folder.mkdir()
    write_pcap(folder / "keys.pcap", keys, seconds=keys[-1][0] + 8)
    run = place_calls(folder, pbx.sip_port, ["+79211234567"], folder / "keys.pcap", **kw)  # type: ignore[arg-type]
    return (
        "SIPp: call ended as scripted" if run.returncode == 0 else f"SIPp exited {run.returncode}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="meterline-try-"))
    url = args.database_url or f"sqlite:///{work / 'meterline.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        account = add_account(session)
        now = datetime.now(UTC)
        add_meter(session, account, now=now)
        add_meter(
            session,
            account,
            serial="7734",
            kind="heat",
            location="ванная",
            history=("10", "10.5", "11", "11.5"),
            now=now,
        )
        session.commit()
    print(f"database: {url}")
    chroot = build_chroot()
    rtp = random.randrange(20000, 40000, 1000)
    pbx = Pbx(chroot, f"meterline-try-{os.getpid()}", free_port(), free_port(), rtp, free_port())
    pbx.configure()
    env = server_env(
        url,
        5000,
        {
            "METERLINE_ASTERISK_SOUNDS": pbx.sounds,
            "METERLINE_ASTERISK_OPERATOR": "Local/busy@operators",
        },
    )
    print(meterline(env, "prompts", "render", "--out", str(pbx.host_home / "sounds")).strip())
    subprocess.run(
        ["chroot", str(chroot), "chown", "-R", "asterisk:asterisk", pbx.sounds], check=True
    )
    pbx.start()
    agi = start_agi(url, pbx, pbx.agi_port, work / "agi.log")
    guarded = start_agi(
        url, pbx, pbx.guarded_agi_port, work / "guarded.log", METERLINE_AGI_ALLOW="10.0.0.0/8"
    )
    try:
        keys = answers_at(3.0, "112*5#", "1", "11*9#", "1")
        print("call 1, keys 112*5# 1 11*9# 1:", sip_call(work, pbx, "whole", keys))
        print(
            "call 2, keys 112# then hangs up:",
            sip_call(work, pbx, "dropped", answers_at(3.0, "112#"), hang_up_ms=6000),
        )
        sip_call(work, pbx, "guarded", answers_at(2.0, "1"), hang_up_ms=3000, line=GUARDED_LINE)
    finally:
        for process in (agi.process, guarded.process):
            process.terminate()
            process.wait(15)
        pbx.stop()
    refused = [line for line in guarded.log().splitlines() if "refused" in line]
    print(
        "call 3, to a meterline agi that allows only 10.0.0.0/8:", refused[-1] if refused else "?"
    )
    with Session(engine) as session:
        for call in session.scalars(select(Call).order_by(Call.id)):
            print(f"  call #{call.id} {call.call_sid}: outcome {call.outcome}")
        for reading in session.scalars(select(Reading).where(Reading.source == "ivr")):
            print(f"  reading {reading.value} ({reading.status}) of meter #{reading.meter_id}")
        for flag in session.scalars(select(Flag)):
            print(f"  flag {flag.reason} on call #{flag.call_id}")
    print(meterline(env, "export", "readings", "--period", now.strftime("%Y-%m")).strip())
    print(
        "\nThe operator view of these calls:\n"
        f"  export METERLINE_DATABASE_URL='{url}' METERLINE_SECRET_KEY=try\n"
        "  export TWILIO_AUTH_TOKEN=unused   # serve wants one; Asterisk calls do not use it\n"
        "  meterline operators add olga && meterline serve\n"
        "  then open http://127.0.0.1:5000/operator/ (the dropped call is in the queue)"
    )


if __name__ == "__main__":
    main()

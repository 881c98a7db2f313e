"""Real calls: SIPp dials a real Asterisk over SIP on loopback, presses keys as RFC 4733 events
from per-call pcaps, and Asterisk hands the call to `meterline agi` by FastAGI."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.models import Call, CallEvent, Flag, Reading
from tests.asterisk.conftest import AgiProcess, start_agi
from tests.asterisk.pbx import GUARDED_LINE, Pbx
from tests.asterisk.rtp import GAP_MS, KEY_MS, write_pcap
from tests.asterisk.sipp import place_calls
from tests.browser.seed import operator
from tests.support.data import add_account, add_meter
from tests.support.server import server_env
from tests.webhooks.test_operator_access import sign_in

pytestmark = pytest.mark.slow
KNOWN = "+79211234567"  # the phone of tests.support.data's account 1001001


def answers_at(first: float, *keys: str, pause: float = 1.5) -> list[tuple[float, str]]:
    """Each answer's keys, the first at `first` s, the next `pause` s after one ends."""
    timed, start = [], first
    for answer in keys:
        timed.append((start, answer))
        start += len(answer) * (KEY_MS + GAP_MS) / 1000 + pause
    return timed


@pytest.fixture
def two_meters(clean_db: Engine, agi: AgiProcess) -> tuple[int, int]:
    """Account 1001001 with a hot-water meter (last 109) and a heat meter (last 11.5)."""
    now = datetime.now(UTC)
    with Session(clean_db) as session:
        account = add_account(session)
        water = add_meter(session, account, now=now)
        heat = add_meter(
            session,
            account,
            serial="7734",
            kind="heat",
            location="ванная",
            history=("10", "10.5", "11", "11.5"),
            now=now,
        )
        session.commit()
        return water.id, heat.id


def closed(engine: Engine, timeout: float = 15) -> None:
    """Wait until `meterline agi` has closed every call (the BYE reaches it a moment later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if session.scalars(select(Call).where(Call.ended_at.is_(None))).first() is None:
                return
        time.sleep(0.2)
    raise AssertionError("a call was never closed")


def call(tmp_path: Path, pbx: Pbx, caller: str, keys: list[tuple[float, str]], **kw: object):  # type: ignore[no-untyped-def]
    """One SIPp call playing `keys`; the SIPp run (asserted to have succeeded by the caller)."""
    pcap = tmp_path / "keys.pcap"
    write_pcap(pcap, keys, seconds=keys[-1][0] + 8)
    return place_calls(tmp_path, pbx.sip_port, [caller], pcap, **kw)  # type: ignore[arg-type]


def test_a_known_caller_keys_every_meter_confirms_and_each_reading_is_stored(
    tmp_path: Path,
    pbx: Pbx,
    agi: AgiProcess,
    database_url: str,
    two_meters: tuple[int, int],
    clean_db: Engine,
) -> None:
    keys = answers_at(3.0, "112*5#", "1", "11*9#", "1")
    run = call(tmp_path, pbx, KNOWN, keys)
    assert run.returncode == 0, f"{run.output}\n{run.errors}\n{agi.log()[-2000:]}"
    closed(clean_db)
    with Session(clean_db) as session:
        readings = {
            r.meter_id: r for r in session.scalars(select(Reading).where(Reading.source == "ivr"))
        }
        water, heat = two_meters
        assert readings[water].value == Decimal("112.5") and readings[water].status == "accepted"
        assert readings[heat].value == Decimal("11.9") and readings[heat].status == "accepted"
        call_row = session.scalars(select(Call)).one()
        assert call_row.outcome == "completed" and call_row.caller == KNOWN
        timeline = list(
            session.scalars(select(CallEvent.text).where(CallEvent.call_id == call_row.id))
        )
        assert "нажато: 112*5" in timeline and "нажато: 11*9" in timeline
        assert session.scalars(select(Flag)).all() == []
    period = datetime.now(UTC).strftime("%Y-%m")
    exported = subprocess.run(
        [sys.executable, "-m", "ivr", "export", "readings", "--period", period],
        env=server_env(database_url, 0),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "112.5" in exported.stdout and "11.9" in exported.stdout, exported.stderr


def test_an_unknown_caller_identifies_by_account_number_and_is_stored(
    tmp_path: Path,
    pbx: Pbx,
    agi: AgiProcess,
    database_url: str,
    two_meters: tuple[int, int],
    clean_db: Engine,
) -> None:
    keys = answers_at(3.0, "1001001#", "12#", "113#", "1", "12#", "1")  # 12: the flat number
    run = call(tmp_path, pbx, "+79110000000", keys)
    assert run.returncode == 0, f"{run.output}\n{run.errors}\n{agi.log()[-2000:]}"
    closed(clean_db)
    with Session(clean_db) as session:
        values = sorted(
            r.value for r in session.scalars(select(Reading).where(Reading.source == "ivr"))
        )
        assert values == [Decimal(12), Decimal(113)]
        assert session.scalars(select(Call)).one().account_id is not None


def test_a_caller_who_hangs_up_before_confirming_is_flagged_and_the_operator_sees_the_call(
    tmp_path: Path,
    pbx: Pbx,
    agi: AgiProcess,
    two_meters: tuple[int, int],
    clean_db: Engine,
    app: Flask,
) -> None:
    keys = answers_at(3.0, "112#")
    run = call(tmp_path, pbx, KNOWN, keys, hang_up_ms=6000)
    assert run.returncode == 0, f"{run.output}\n{run.errors}"
    closed(clean_db)
    with Session(clean_db) as session:
        assert session.scalars(select(Reading).where(Reading.source == "ivr")).all() == []
        call_row = session.scalars(select(Call)).one()
        call_id = call_row.id
        assert call_row.outcome == "dropped"
        assert list(session.scalars(select(Flag.reason))) == ["dropped_call"]
        operator(session, "olga")
        session.commit()
    client = app.test_client()
    assert sign_in(client, "olga") == 302
    page = client.get(f"/operator/calls/{call_id}").text
    assert "нажато: 112" in page and "Звонок прерван" in page
    assert "Вы ввели: сто двенадцать кубометров." in page  # the read-back the caller heard


def test_a_busy_operator_is_announced_and_the_caller_carries_on_keying(
    tmp_path: Path,
    pbx: Pbx,
    agi: AgiProcess,
    database_url: str,
    two_meters: tuple[int, int],
    clean_db: Engine,
) -> None:
    # 0 at the first value prompt; the operators are busy; the line says so and asks again.
    keys = [(3.0, "0"), *answers_at(11.0, "112*5#", "1", "11*9#", "1")]
    run = call(tmp_path, pbx, KNOWN, keys)  # the line must hang up itself, not go silent
    assert run.returncode == 0, f"{run.output}\n{run.errors}\n{agi.log()[-2000:]}"
    closed(clean_db)
    assert "Local/busy@operators" in pbx.log()
    with Session(clean_db) as session:
        values = sorted(
            r.value for r in session.scalars(select(Reading).where(Reading.source == "ivr"))
        )
        assert values == [Decimal("11.9"), Decimal("112.5")]
        notes = list(session.scalars(select(CallEvent.text)))
        assert any("оператор не ответил (busy)" in note for note in notes)


def test_a_fastagi_connection_from_a_network_not_allowed_is_refused(
    tmp_path: Path, pbx: Pbx, database_url: str, clean_db: Engine
) -> None:
    guarded = start_agi(
        database_url,
        pbx,
        pbx.guarded_agi_port,
        tmp_path / "guarded.log",
        METERLINE_AGI_ALLOW="10.0.0.0/8",
    )
    try:
        run = call(tmp_path, pbx, KNOWN, answers_at(2.0, "1"), hang_up_ms=4000, line=GUARDED_LINE)
    finally:
        guarded.process.terminate()
        guarded.process.wait(15)
    assert "refused: not in METERLINE_AGI_ALLOW" in guarded.log()
    with Session(clean_db) as session:
        assert session.scalars(select(Call)).all() == []
    del run  # the caller may see the call fail or end: either way nothing was served


def test_asterisk_serves_sip_and_rtp_on_loopback_only(pbx: Pbx) -> None:
    sockets = subprocess.run(["ss", "-Hlnptu"], capture_output=True, text=True).stdout
    mine = [line.split() for line in sockets.splitlines() if f"pid={pbx.process.pid}," in line]  # type: ignore[union-attr]
    assert any(f"127.0.0.1:{pbx.sip_port}" in fields[4] for fields in mine)
    assert not [f for f in mine if f[0] == "tcp"]  # no AMI, HTTP/ARI or SIP over TCP
    for fields in mine:
        local = fields[4]
        # pjproject opens two wildcard UDP sockets of its own at start (random ports, no SIP
        # transport on them: asterisk/asterisk#943); every configured listener is loopback.
        assert local.startswith("127.0.0.1:") or local.rsplit(":", 1)[0] in ("0.0.0.0", "[::]", "*")

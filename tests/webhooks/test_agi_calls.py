"""Whole calls through `meterline agi`'s server, with a fake Asterisk over real TCP and the
real step driver on the test database: the same calls, readings and flags as a Twilio call."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import select

from callflows.model import Say
from ivr.agi.cli import agi_service
from ivr.agi.plan import AgiRenderer, Plan
from ivr.agi.server import FastAgiServer
from storage.models import Call, CallEvent, Flag, Reading
from tests.support.agi import HANG_UP, FakeCaller
from tests.support.data import add_account, add_meter
from tests.webhooks.conftest import IN_WINDOW

LOOPBACK = [ipaddress.ip_network("127.0.0.0/8")]


@pytest.fixture
def agi_app(app_config: dict[str, str], frozen_app: Flask) -> Flask:
    """The app with one account (phone +79211234567) and its hot-water meter (last 109)."""
    with frozen_app.extensions["meterline"].sessions() as session:
        account = add_account(session)
        add_meter(session, account, now=IN_WINDOW)
        session.commit()
    return frozen_app


def place(app: Flask, *callers: FakeCaller, allow: list = LOOPBACK) -> FastAgiServer:  # type: ignore[type-arg]
    """Run a FastAGI server on a free loopback port until every caller's call is over."""
    with app.app_context():
        server = FastAgiServer(agi_service(), allow)

    async def main() -> None:
        listener = await server.start("127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            await asyncio.wait_for(
                asyncio.gather(*(c.call("127.0.0.1", port) for c in callers)), 30
            )
            await asyncio.sleep(0.2)  # the server closes the call after the socket

    asyncio.run(main())
    server.pool.shutdown(wait=True)
    return server


def _db(app: Flask):  # type: ignore[no-untyped-def]
    return app.extensions["meterline"].sessions()


def test_a_keyed_and_confirmed_value_is_stored_and_the_call_completes(agi_app: Flask) -> None:
    caller = FakeCaller("1764000000.1", "+79211234567", ["112*5#", "1", ""])  # "": the summary
    place(agi_app, caller)
    with _db(agi_app) as session:
        [reading] = session.scalars(select(Reading).where(Reading.source == "ivr"))
        call = session.scalars(select(Call)).one()
        prompts = session.scalars(select(CallEvent.text).where(CallEvent.kind == "prompt"))
        assert str(reading.value) == "112.5" and reading.status == "accepted"
        assert call.call_sid == "1764000000.1" and call.caller == "+79211234567"
        assert call.outcome == "completed" and call.ended_at is not None
        assert any("сто двенадцать целых пять десятых" in text for text in prompts)
        assert session.scalars(select(Flag)).all() == []
    assert caller.commands[0] == "ANSWER" and caller.commands[-1] == "HANGUP"


def test_the_read_back_is_played_from_word_files(agi_app: Flask) -> None:
    caller = FakeCaller("1764000000.2", "+79211234567", ["112*5#", "1"], barge_in=False)
    place(agi_app, caller)
    with agi_app.app_context():
        renderer = agi_service().renderer
        assert isinstance(renderer, AgiRenderer)
        words = renderer.files(Say("readback_keyed", {"value": Decimal("112.5")}))
    start = caller.played.index(words[0])
    assert caller.played[start : start + len(words)] == words


def test_a_caller_who_hangs_up_before_confirming_is_a_dropped_call(agi_app: Flask) -> None:
    caller = FakeCaller("1764000000.3", "+79211234567", ["112#", HANG_UP])
    place(agi_app, caller)
    with _db(agi_app) as session:
        call = session.scalars(select(Call)).one()
        assert call.outcome == "dropped"
        assert list(session.scalars(select(Flag.reason))) == ["dropped_call"]
        assert session.scalars(select(Reading).where(Reading.source == "ivr")).all() == []


def test_an_unknown_caller_identifies_by_account_number(agi_app: Flask) -> None:
    caller = FakeCaller("1764000000.4", "+79110000000", ["1001001#", "12#", "115#", "1"])
    place(agi_app, caller)
    with _db(agi_app) as session:
        [reading] = session.scalars(select(Reading).where(Reading.source == "ivr"))
        assert str(reading.value) == "115"
        assert reading.status == "flagged"  # after the flat number (12), but not bound
        assert session.scalars(select(Call)).one().account_id is not None


def test_a_withheld_number_is_asked_for_the_account(agi_app: Flask) -> None:
    caller = FakeCaller("1764000000.5", "unknown", ["1001001#", "12#", "115#", "1"])
    place(agi_app, caller)
    with _db(agi_app) as session:
        assert session.scalars(select(Call)).one().caller == ""
        assert len(session.scalars(select(Reading).where(Reading.source == "ivr")).all()) == 1


def test_a_connection_from_outside_the_allowed_networks_is_refused(
    agi_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caller = FakeCaller("1764000000.6", "+79211234567", ["112#", "1"])
    with caplog.at_level(logging.WARNING):
        place(agi_app, caller, allow=[ipaddress.ip_network("10.0.0.0/8")])
    assert caller.commands == [] and caller.closed_by_server
    assert "refused: not in METERLINE_AGI_ALLOW" in caplog.text
    with _db(agi_app) as session:
        assert session.scalars(select(Call)).all() == []


def test_many_simultaneous_calls_are_each_stored(agi_app: Flask, app_config: dict) -> None:  # type: ignore[type-arg]
    with _db(agi_app) as session:
        for n in range(2, 21):
            account = add_account(session, number=f"10010{n:02d}", phones=(f"+792112345{n:02d}",))
            add_meter(session, account, serial=f"S{n}", now=IN_WINDOW)
        session.commit()
    callers = [
        FakeCaller(f"1764000001.{n}", f"+792112345{n:02d}", [f"110*{n:02d}#", "1"])
        for n in range(2, 21)
    ]
    place(agi_app, *callers)
    with _db(agi_app) as session:
        readings = session.scalars(select(Reading).where(Reading.source == "ivr"))
        values = sorted(r.value for r in readings if r.status == "accepted")
        assert values == [Decimal(f"110.{n:02d}") for n in range(2, 21)]


def test_a_slow_step_of_one_call_does_not_hold_up_the_others(agi_app: Flask) -> None:
    with _db(agi_app) as session:
        for n in range(2, 6):
            account = add_account(session, number=f"10010{n:02d}", phones=(f"+792112345{n:02d}",))
            add_meter(session, account, serial=f"S{n}", now=IN_WINDOW)
        session.commit()
    slow = FakeCaller("1764000002.1", "+79211234567", ["110*5#", "1"])
    quick = [
        FakeCaller(f"1764000002.{n}", f"+792112345{n:02d}", [f"110*{n:02d}#", "1"])
        for n in range(2, 6)
    ]
    with agi_app.app_context():
        server = FastAgiServer(agi_service(), LOOPBACK)
    step = server.service.step

    def slow_for_one(form: dict[str, str], seq: int, step_url: object) -> str:
        if form["CallSid"] == slow.uniqueid:
            time.sleep(2.0)  # say, a lock held elsewhere in the database
        return step(form, seq, step_url)  # type: ignore[arg-type]

    server.service.step = slow_for_one  # type: ignore[method-assign]
    finished: dict[str, float] = {}

    async def timed(caller: FakeCaller, port: int) -> None:
        await caller.call("127.0.0.1", port)
        finished[caller.uniqueid] = time.monotonic()

    async def main() -> None:
        listener = await server.start("127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            await asyncio.gather(*(timed(c, port) for c in [slow, *quick]))

    started = time.monotonic()
    asyncio.run(main())
    server.pool.shutdown(wait=True)
    assert finished[slow.uniqueid] - started >= 4.0  # two slow steps
    assert all(finished[c.uniqueid] - started < 2.0 for c in quick)


def test_a_fault_in_the_step_driver_is_flagged_and_the_caller_hears_an_apology(
    agi_app: Flask,
) -> None:
    caller = FakeCaller("1764000003.1", "+79211234567", ["112#", "1"])
    with agi_app.app_context():
        server = FastAgiServer(agi_service(), LOOPBACK)
        apology = AgiRenderer(agi_app.extensions["meterline"].cache["catalogue"], "/x").files(
            Say("system_error")
        )

    def broken(form: dict[str, str], seq: int, step_url: object) -> str:
        raise RuntimeError("the database is on fire")

    server.service.step = broken  # type: ignore[method-assign]

    async def main() -> None:
        listener = await server.start("127.0.0.1", 0)
        async with listener:
            await caller.call("127.0.0.1", listener.sockets[0].getsockname()[1])
            await asyncio.sleep(0.2)

    asyncio.run(main())
    server.pool.shutdown(wait=True)
    assert caller.commands[-1] == "HANGUP"
    assert any(
        c.startswith("STREAM FILE") and apology[0].rsplit("/", 1)[1] in c for c in caller.commands
    )
    with _db(agi_app) as session:
        assert "system_error" in list(session.scalars(select(Flag.reason)))


@pytest.fixture
def one_call_an_hour(app_config: dict[str, str]) -> None:
    """The rate limit at one call per number and hour (set before the app is built)."""
    app_config["METERLINE_CALLS_PER_HOUR"] = "1"


def test_the_rate_limit_applies_to_asterisk_calls_as_to_twilio_calls(
    one_call_an_hour: None, agi_app: Flask
) -> None:
    first = FakeCaller("1764000004.1", "+79211234567", ["112#", "1"])
    second = FakeCaller("1764000004.2", "+79211234567", ["112#", "1"])
    place(agi_app, first)
    place(agi_app, second)
    with agi_app.app_context():
        refusal = agi_service().renderer.apology(prompt="rate_limited")
    assert second.commands[1:] == _commands_of(refusal)  # after ANSWER: the refusal only
    with _db(agi_app) as session:
        assert list(session.scalars(select(Flag.reason))) == ["rate_limited"]
        assert len(session.scalars(select(Reading).where(Reading.source == "ivr")).all()) == 1


def _commands_of(reply: str) -> list[str]:
    """The AGI commands a parting plan (prompts, then a hang-up) sends."""
    plan = Plan.from_json(reply)
    played = [f'STREAM FILE {name} ""' for step in plan.steps for name in step.get("play", [])]
    return [*played, "HANGUP"]


@pytest.fixture
def operators_at_asterisk(app_config: dict[str, str]) -> None:
    """An operator Dial target for the Asterisk line (set before the app is built)."""
    app_config["METERLINE_ASTERISK_OPERATOR"] = "PJSIP/operators"
    app_config["METERLINE_OPERATOR_HOURS"] = "00:00-23:59"


def test_a_busy_operator_is_reported_to_the_flow_and_the_caller_carries_on_keying(
    operators_at_asterisk: None, agi_app: Flask
) -> None:
    caller = FakeCaller("1764000005.1", "+79211234567", ["0", "112*5#", "1", ""], "BUSY")
    place(agi_app, caller)
    assert 'EXEC Dial "PJSIP/operators,30"' in caller.commands
    with _db(agi_app) as session:
        [reading] = session.scalars(select(Reading).where(Reading.source == "ivr"))
        assert reading.value == Decimal("112.5")
        notes = list(session.scalars(select(CallEvent.text)))
        assert any("оператор не ответил (busy)" in note for note in notes)

"""Whole calls through the webhooks: storing, replays, faults, drops and limits."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from storage.models import Call, CallReply, Flag, Reading
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW


@pytest.fixture
def one_meter(frozen_app: Flask) -> int:
    """Account 1001001 (phone +79211234567) with one hot-water meter, last reading 109."""
    with frozen_app.extensions["meterline"].sessions() as session:
        account = add_account(session)
        meter = add_meter(session, account, now=IN_WINDOW)
        session.commit()
        return meter.id


def _readings(app: Flask) -> list[Reading]:
    with app.extensions["meterline"].sessions() as session:
        return list(session.scalars(select(Reading).where(Reading.source == "ivr")))


def _flags(app: Flask) -> list[str]:
    with app.extensions["meterline"].sessions() as session:
        return list(session.scalars(select(Flag.reason).order_by(Flag.id)))


def test_the_prompt_is_inside_the_gather_and_its_action_is_the_public_step_url(
    twilio: TwilioClient, one_meter: int
) -> None:
    root = twilio.start()
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("action") == "https://ivr.example.org/voice/step?seq=1"
    assert gather.get("input") == "dtmf" and gather.get("finishOnKey") == "#"
    assert gather.find("Say") is not None
    assert all(say.get("language") == "ru-RU" for say in root.iter("Say"))


def test_a_keyed_value_is_stored_once_the_caller_confirms(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    readback = twilio.answer("112*5")
    assert "сто двенадцать целых пять десятых" in spoken_text(readback)
    assert _readings(frozen_app) == []  # nothing stored before confirmation
    twilio.answer("1")
    [reading] = _readings(frozen_app)
    assert str(reading.value) == "112.5"
    assert reading.status == "accepted" and reading.meter_id == one_meter
    assert reading.period == "2026-11"


def test_a_replayed_confirmation_gets_the_same_answer_and_stores_nothing_twice(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    twilio.answer("112")
    gather = twilio.last.find("Gather") if twilio.last is not None else None
    assert gather is not None
    action = gather.get("action", "")
    first = twilio.post(action, Digits="1")
    again = twilio.post(action, Digits="1")  # Twilio retried the same request
    assert first.status_code == again.status_code == 200
    assert first.data == again.data
    assert len(_readings(frozen_app)) == 1


def test_an_old_step_replayed_later_gets_its_original_answer(
    twilio: TwilioClient, one_meter: int
) -> None:
    first = ET.tostring(twilio.start())
    twilio.answer("112")
    twilio.answer("1")
    replay = twilio.post("/voice/incoming", CallStatus="ringing")
    assert ET.tostring(ET.fromstring(replay.data)) == first


def _is_apology(root: ET.Element) -> bool:
    return root.find("Hangup") is not None and root.find("Gather") is None


def test_an_unknown_call_gets_an_apology_and_a_flag(
    frozen_app: Flask, twilio: TwilioClient
) -> None:
    root = twilio.twiml("/voice/step?seq=3", Digits="1")
    assert _is_apology(root)
    assert _flags(frozen_app) == ["system_error"]


def test_a_step_ahead_of_the_call_gets_an_apology(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    assert _is_apology(twilio.twiml("/voice/step?seq=7", Digits="1"))
    assert "system_error" in _flags(frozen_app)


@pytest.mark.parametrize("bad_state", ["{not json", '{"step": "nowhere"}', "[]", ""])
def test_a_corrupt_state_gets_an_apology_not_a_5xx(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int, bad_state: str
) -> None:
    twilio.start()
    with frozen_app.extensions["meterline"].sessions() as session:
        session.execute(update(Call).values(state=bad_state))
        session.commit()
    assert _is_apology(twilio.answer("112"))
    assert "system_error" in _flags(frozen_app)
    assert _readings(frozen_app) == []


def test_a_missing_call_sid_gets_an_apology(frozen_app: Flask, twilio: TwilioClient) -> None:
    twilio.call_sid = ""
    assert _is_apology(twilio.twiml("/voice/incoming"))


def test_hanging_up_mid_call_flags_a_dropped_call_and_keeps_what_was_confirmed(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    with frozen_app.extensions["meterline"].sessions() as session:
        account_id = session.scalar(select(func.min(Call.id)))  # no calls yet
        assert account_id is None
        from storage.models import Account

        account = session.scalars(select(Account)).one()
        add_meter(session, account, serial="0245679", kind="cold_water", now=IN_WINDOW)
        session.commit()
    twilio.start()
    twilio.answer("112")
    twilio.answer("1")  # first meter confirmed; the caller hangs up at the second
    for _ in range(2):  # status callbacks can be retried
        assert twilio.post("/voice/status", CallStatus="completed").status_code == 200
    assert len(_readings(frozen_app)) == 1
    assert _flags(frozen_app) == ["dropped_call"]
    with frozen_app.extensions["meterline"].sessions() as session:
        call = session.scalars(select(Call)).one()
        assert call.outcome == "dropped" and call.ended_at is not None


def test_a_status_callback_before_the_last_step_does_not_lose_the_confirmation(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    twilio.answer("112")
    gather = twilio.last.find("Gather") if twilio.last is not None else None
    assert gather is not None
    twilio.post("/voice/status", CallStatus="completed")  # arrives first
    assert twilio.post(gather.get("action", ""), Digits="1").status_code == 200
    [reading] = _readings(frozen_app)
    assert str(reading.value) == "112"


def test_a_finished_call_raises_no_dropped_flag(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    twilio.answer("112")
    root = twilio.answer("1")
    assert "Принято одно показание" in spoken_text(root)  # the summary, then goodbye
    twilio.post("/voice/status", CallStatus="completed")  # hung up during the summary
    assert "dropped_call" not in _flags(frozen_app)


def test_every_reply_is_kept_per_step(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    twilio.answer("112")
    with frozen_app.extensions["meterline"].sessions() as session:
        seqs = list(session.scalars(select(CallReply.seq).order_by(CallReply.seq)))
    assert seqs == [0, 1]


def test_a_caller_over_the_hourly_limit_hears_a_polite_refusal(
    app_config: dict[str, str], clean_db: object
) -> None:
    from ivr import create_app
    from tests.conftest import TEST_TOKEN

    application = create_app(dict(app_config, METERLINE_CALLS_PER_HOUR="2"))
    application.extensions["meterline"].clock = lambda: IN_WINDOW
    client = application.test_client()
    roots = [TwilioClient(client, TEST_TOKEN).start() for _ in range(3)]
    assert roots[0].find("Gather") is not None and roots[1].find("Gather") is not None
    assert _is_apology(roots[2]) and "позвоните" in spoken_text(roots[2]).lower()
    assert _flags(application) == ["rate_limited"]
    application.extensions["meterline"].engine.dispose()


def test_when_the_database_is_down_the_caller_hears_an_apology(
    app_config: dict[str, str],
) -> None:
    from ivr import create_app
    from tests.conftest import TEST_TOKEN

    config = dict(app_config, METERLINE_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    application = create_app(config)
    root = TwilioClient(application.test_client(), TEST_TOKEN).start()
    assert _is_apology(root)
    application.extensions["meterline"].engine.dispose()

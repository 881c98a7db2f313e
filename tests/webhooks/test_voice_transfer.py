"""Through the webhooks: a transfer reports its result, a pending value survives it, and keys
arrive as Twilio sends them (the finishing '#' in FinishedOnKey, not in Digits)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from storage.models import Call, Flag, Reading
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW


@pytest.fixture
def one_meter(frozen_app: Flask) -> int:
    """Account 1001001 (phone +79211234567) with one hot-water meter, last reading 109."""
    with frozen_app.extensions["meterline"].sessions() as session:
        meter = add_meter(session, add_account(session), now=IN_WINDOW)
        session.commit()
        return meter.id


def _dial_to_operator(twilio: TwilioClient) -> str:
    """Press 0 and return the Dial's action URL."""
    root = twilio.answer("0")
    dial = root.find("Dial")
    assert dial is not None and (dial.text or "").strip() == "+78172597904"
    assert root.find("Hangup") is None  # the call comes back to us whatever happens
    return dial.get("action", "")


def test_the_dial_reports_to_the_dial_result_route(twilio: TwilioClient, one_meter: int) -> None:
    twilio.start()
    action = _dial_to_operator(twilio)
    assert action == "https://ivr.example.org/voice/dial?seq=2"


def test_a_busy_operator_is_said_and_the_caller_keys_on(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    action = _dial_to_operator(twilio)
    root = twilio.twiml(action, DialCallStatus="busy", DialCallDuration="0")
    assert "оператор сейчас не может ответить" in spoken_text(root)
    assert root.find("Gather") is not None
    twilio.answer("112")
    twilio.answer("1")
    [reading] = _readings(frozen_app)
    assert reading.status == "accepted" and str(reading.value) == "112"
    with frozen_app.extensions["meterline"].sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == "completed"


def test_a_value_read_back_is_stored_flagged_when_the_caller_asks_for_the_operator(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    twilio.answer("112")
    root = twilio.answer("0")
    assert "вы не подтвердили" in spoken_text(root)
    [reading] = _readings(frozen_app)
    assert reading.status == "flagged" and str(reading.value) == "112"
    with frozen_app.extensions["meterline"].sessions() as session:
        flag = session.scalars(select(Flag)).one()
        assert flag.reason == "not_confirmed" and flag.reading_id == reading.id
    dial = root.find("Dial")
    assert dial is not None
    root = twilio.twiml(dial.get("action", ""), DialCallStatus="completed")
    assert root.find("Hangup") is not None
    with frozen_app.extensions["meterline"].sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == "transferred"


def test_a_dial_result_without_its_status_gets_an_apology(
    twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    action = _dial_to_operator(twilio)
    root = twilio.twiml(action)
    assert root.find("Hangup") is not None and "техническая ошибка" in spoken_text(root)


def test_zero_finished_with_hash_is_a_zero_reading_on_a_new_meter(
    frozen_app: Flask, twilio: TwilioClient
) -> None:
    with frozen_app.extensions["meterline"].sessions() as session:
        add_meter(session, add_account(session), history=(), now=IN_WINDOW)
        session.commit()
    root = twilio.start()
    gather = root.find("Gather")
    assert gather is not None
    root = twilio.twiml(gather.get("action", ""), Digits="0", FinishedOnKey="#")
    assert "Вы ввели: ноль" in spoken_text(root)


def test_a_value_gather_acts_on_a_lone_key_after_two_seconds(
    twilio: TwilioClient, one_meter: int
) -> None:
    gather = twilio.start().find("Gather")
    assert gather is not None and gather.get("timeout") == "2"
    pause = gather.find("Pause")
    assert pause is not None and int(pause.get("length", "0")) >= 5  # time to start keying


def test_prompts_are_said_by_the_catalogues_voice(twilio: TwilioClient, one_meter: int) -> None:
    root = twilio.start()
    assert {say.get("voice") for say in root.iter("Say")} == {"Polly.Tatyana"}


def _readings(app: Flask) -> list[Reading]:
    with app.extensions["meterline"].sessions() as session:
        return list(session.scalars(select(Reading).where(Reading.source == "ivr")))


def test_a_call_ending_during_the_transfer_is_recorded_as_transferred(
    frozen_app: Flask, twilio: TwilioClient, one_meter: int
) -> None:
    twilio.start()
    _dial_to_operator(twilio)
    assert twilio.post("/voice/status", CallStatus="completed").status_code == 200
    with frozen_app.extensions["meterline"].sessions() as session:
        assert session.scalars(select(Call.outcome)).one() == "transferred"
        assert session.scalars(select(Flag)).all() == []

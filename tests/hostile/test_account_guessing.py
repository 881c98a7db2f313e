"""Account numbers cannot be guessed into someone's address, readings and meters: a caller
not bound to the account proves a second fact first, attempts are limited per call and per
hour across callers, and what such a caller hands in goes to review."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from storage.models import Flag, Reading
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW

ACCOUNT = "1001001"  # address "г. Вологда, ул. Ленина, д. 5, кв. 12"
# The street, and any previous reading (which the line reads out where it says one).
DISCLOSED = ("Ленина", "Предыдущее показание", "сто девять")


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    """Four account-number attempts an hour for all callers; hidden numbers not limited."""
    return {
        **app_config,
        "METERLINE_ACCOUNT_GUESSES_PER_HOUR": "4",
        "METERLINE_UNKNOWN_CALLERS_PER_HOUR": "1000",
    }


@pytest.fixture
def line(frozen_app: Flask) -> Flask:
    """Account 1001001 with a hot-water meter (last reading 109), bound to another phone."""
    with frozen_app.extensions["meterline"].sessions() as session:
        add_meter(session, add_account(session, number=ACCOUNT), now=IN_WINDOW)
        session.commit()
    return frozen_app


def stranger(app: Flask, caller: str = "anonymous") -> TwilioClient:
    """A call from a number not bound to the account, greeted and asked for the account."""
    call = TwilioClient(app.test_client(), TEST_TOKEN, caller=caller)
    assert "лицевого счёта" in spoken_text(call.start())
    return call


def test_nothing_is_disclosed_before_the_flat_number_is_confirmed(line: Flask) -> None:
    call = stranger(line)
    asked = spoken_text(call.answer(ACCOUNT))
    assert "номер квартиры" in asked
    assert not any(word in asked for word in DISCLOSED)
    wrong = spoken_text(call.answer("13"))
    assert "не совпадает" in wrong and not any(word in wrong for word in DISCLOSED)
    call.answer(ACCOUNT)
    right = spoken_text(call.answer("12"))
    assert "Ленина" in right


def test_readings_from_a_caller_found_by_account_number_go_to_review(line: Flask) -> None:
    call = stranger(line, caller="+79990001122")
    call.answer(ACCOUNT)
    call.answer("12")
    call.answer("112")
    assert "провер" in spoken_text(call.answer("1")).lower()
    with line.extensions["meterline"].sessions() as session:
        reading = session.scalars(select(Reading).where(Reading.source == "ivr")).one()
        flag = session.scalars(select(Flag).where(Flag.reading_id == reading.id)).one()
    assert reading.status == "flagged" and flag.reason == "unverified_caller"


def test_a_call_gets_three_account_number_attempts(line: Flask) -> None:
    call = stranger(line)
    call.answer("555")
    call.answer("556")
    last = call.answer("557")
    assert last.find("Gather") is None
    assert "не удалось определить" in spoken_text(last)


def test_account_number_attempts_are_limited_per_hour_across_callers(line: Flask) -> None:
    for n in range(2):  # two callers, two wrong numbers each: the hour's four attempts
        call = stranger(line, caller=f"+7999000000{n}")
        call.answer("555")
        call.answer("556")
    late = stranger(line, caller="+79990000009")
    answer = late.answer(ACCOUNT)  # even the right number: the hour is spent
    assert "слишком много попыток" in spoken_text(answer)
    assert not any(word in spoken_text(answer) for word in DISCLOSED)
    with line.extensions["meterline"].sessions() as session:
        reasons = list(session.scalars(select(Flag.reason)))
    assert "rate_limited" in reasons


def test_a_confirmed_second_fact_gives_its_attempt_back(line: Flask) -> None:
    for n in range(6):  # six callers who know their account and flat: never limited
        call = stranger(line, caller=f"+7999000001{n}")
        call.answer(ACCOUNT)
        assert "Ленина" in spoken_text(call.answer("12"))


def test_a_bound_caller_hears_their_address_and_readings_and_is_not_flagged(
    frozen_app: Flask,
) -> None:
    with frozen_app.extensions["meterline"].sessions() as session:
        add_meter(session, add_account(session, number=ACCOUNT), now=IN_WINDOW)
        session.commit()
    call = TwilioClient(frozen_app.test_client(), TEST_TOKEN)  # the account's own phone
    assert "горячая вода" in spoken_text(call.start())
    call.answer("112")
    call.answer("1")
    with frozen_app.extensions["meterline"].sessions() as session:
        assert session.scalars(select(Reading.status).where(Reading.source == "ivr")).one() == (
            "accepted"
        )

"""The submission window, as configured, in the line's own time zone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import select

from storage.models import Flag, Reading
from tests.conftest import TEST_TOKEN
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import app_with_a_meter

TENTH = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
# 25 November 21:30 UTC is already the 26th in Vologda (UTC+3): outside the window.
LATE_ON_THE_25TH_UTC = datetime(2026, 11, 25, 21, 30, tzinfo=UTC)


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    made: list[Flask] = []
    yield made
    for application in made:
        application.extensions["meterline"].engine.dispose()


@pytest.mark.parametrize("now", [TENTH, LATE_ON_THE_25TH_UTC])
def test_outside_the_window_the_line_says_when_and_hangs_up(
    app_config: dict[str, str], clean_db: object, apps: list[Flask], now: datetime
) -> None:
    apps.append(app_with_a_meter(app_config, now))
    root = TwilioClient(apps[0].test_client(), TEST_TOKEN).start()
    assert root.find("Gather") is None and root.find("Hangup") is not None
    text = spoken_text(root)
    assert "с двадцать третьего по двадцать пятое число" in text
    assert "с восьми до двадцати часов" in text


def test_with_the_flag_policy_readings_outside_the_window_go_to_an_operator(
    app_config: dict[str, str], clean_db: object, apps: list[Flask]
) -> None:
    config = dict(app_config, METERLINE_OUTSIDE_WINDOW="flag")
    apps.append(app_with_a_meter(config, TENTH))
    phone = TwilioClient(apps[0].test_client(), TEST_TOKEN)
    phone.start()
    phone.answer("112")
    phone.answer("1")
    with apps[0].extensions["meterline"].sessions() as session:
        reading = session.scalars(select(Reading).where(Reading.source == "ivr")).one()
        reasons = list(session.scalars(select(Flag.reason)))
    assert reading.status == "flagged" and reasons == ["outside_window"]


def test_a_custom_window_is_honoured(
    app_config: dict[str, str], clean_db: object, apps: list[Flask]
) -> None:
    apps.append(app_with_a_meter(dict(app_config, METERLINE_WINDOW="5-15"), TENTH))
    root = TwilioClient(apps[0].test_client(), TEST_TOKEN).start()
    assert root.find("Gather") is not None

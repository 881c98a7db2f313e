"""Fixtures for webhook tests: a signed Twilio client and a fixed clock inside the window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from ivr import create_app
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient

# 24 November, 10:00 in Vologda (UTC+3): inside the 23-25 window and operator hours.
IN_WINDOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.fixture
def frozen_app(app: Flask) -> Flask:
    """The app with its clock fixed inside the submission window."""
    app.extensions["meterline"].clock = lambda: IN_WINDOW
    return app


@pytest.fixture
def twilio(frozen_app: Flask) -> TwilioClient:
    """A signed Twilio-like client for one call."""
    return TwilioClient(frozen_app.test_client(), TEST_TOKEN)


def app_with_a_meter(config: dict[str, str], now: datetime, *, serving: bool = False) -> Flask:
    """An app built from `config` (a `meterline serve` worker's with `serving`), its clock
    fixed at `now`, with one account and its meter."""
    app = create_app(config, serving=serving)
    app.extensions["meterline"].clock = lambda: now
    with app.extensions["meterline"].sessions() as session:
        add_meter(session, add_account(session), now=now)
        session.commit()
    return app

"""Hourly call limits that hiding the number cannot go round, and that hold when calls
arrive all at once (the count was once read, then a row inserted: 21–36 of 40–80
simultaneous calls got through a limit of 10)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.models import Flag
from tests.conftest import TEST_TOKEN
from tests.faults.calls import serving
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, signed_headers, spoken_text

CALLER = "+79211234567"
HIDDEN = ["anonymous", "", "+", "Restricted", "266696687", "unknown", "+7", "not a number"]


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    """Three calls an hour from hidden numbers, all together."""
    return {**app_config, "METERLINE_UNKNOWN_CALLERS_PER_HOUR": "3"}


def test_withheld_empty_and_unparseable_numbers_share_one_hourly_limit(
    frozen_app: Flask,
) -> None:
    client = frozen_app.test_client()
    greeted = [
        TwilioClient(client, TEST_TOKEN, caller=number).start().find("Gather") is not None
        for number in HIDDEN
    ]
    assert greeted == [True, True, True] + [False] * (len(HIDDEN) - 3)
    refused = TwilioClient(client, TEST_TOKEN, caller="anonymous").start()
    assert "звонков" in spoken_text(refused).lower() or refused.find("Hangup") is not None
    # A caller who shows a number is counted on their own.
    assert TwilioClient(client, TEST_TOKEN, caller=CALLER).start().find("Gather") is not None


@pytest.mark.parametrize("at_once", [40, 80])
def test_simultaneous_calls_from_one_number_never_pass_the_hourly_limit(
    database_url: str, clean_db: Engine, tmp_path: Path, at_once: int
) -> None:
    with Session(clean_db) as session:
        add_meter(session, add_account(session, phones=(CALLER,)))
        session.commit()
    extra = {"METERLINE_CALLS_PER_HOUR": "10"}
    with serving(database_url, tmp_path / "server.log", workers=2, extra=extra) as server:
        url = server.url + "/voice/incoming"

        def call(n: int) -> bool:
            fields = {"CallSid": f"CA{n:032d}", "From": CALLER, "CallStatus": "ringing"}
            headers = signed_headers(TEST_TOKEN, url, fields)
            answer = requests.post(url, data=fields, headers=headers, timeout=30)
            assert answer.status_code == 200
            return "<Gather" in answer.text

        with ThreadPoolExecutor(max_workers=at_once) as pool:
            greeted = list(pool.map(call, range(at_once)))
    assert sum(greeted) == 10
    with clean_db.connect() as conn:
        refused = conn.scalar(
            select(func.count()).select_from(Flag).where(Flag.reason == "rate_limited")
        )
    assert refused == at_once - 10

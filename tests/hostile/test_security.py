"""What the line believes and what it tells: forwarded headers, logs, the per-caller limit.

Forged and replayed signatures: tests/webhooks/test_signatures.py. Sign-in and roles on
every operator page: tests/webhooks/test_operator_access.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask, request
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ivr import create_app
from storage.models import Flag
from storage.steps import StepStore
from tests.conftest import TEST_TOKEN
from tests.faults.calls import serving
from tests.support.data import add_account, add_meter
from tests.support.twilio import PUBLIC_URL, TwilioClient, signed_headers
from tests.webhooks.conftest import IN_WINDOW

CALLER = "+79211234567"
FIELDS = {"CallSid": "CA" + "7" * 32, "From": CALLER, "To": "+78172597904"}
SPOOFED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
}


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    """Three calls an hour per number: the logging test's last call is refused."""
    return {**app_config, "METERLINE_CALLS_PER_HOUR": "3"}


def _app(app_config: dict[str, str], proxies: int) -> Flask:
    """The app behind `proxies` trusted proxies, with a page that shows what it believes."""
    app = create_app(dict(app_config, METERLINE_TRUSTED_PROXIES=str(proxies)))

    @app.get("/_seen")
    def seen() -> str:
        return f"{request.remote_addr} {request.scheme} {request.host}"

    return app


@pytest.fixture
def direct(app_config: dict[str, str], clean_db: Engine) -> Iterator[Flask]:
    """No proxy trusted (the default)."""
    app = _app(app_config, 0)
    yield app
    app.extensions["meterline"].engine.dispose()


@pytest.fixture
def behind_one(app_config: dict[str, str], clean_db: Engine) -> Iterator[Flask]:
    """One reverse proxy of ours in front."""
    app = _app(app_config, 1)
    yield app
    app.extensions["meterline"].engine.dispose()


def test_without_trusted_proxies_forwarded_headers_change_nothing(direct: Flask) -> None:
    seen = direct.test_client().get("/_seen", headers=SPOOFED).text
    assert seen == "127.0.0.1 http localhost"
    headers = {**SPOOFED, **signed_headers(TEST_TOKEN, PUBLIC_URL + "/voice/incoming", FIELDS)}
    assert (
        direct.test_client().post("/voice/incoming", data=FIELDS, headers=headers).status_code
        == 200
    )


def test_behind_a_trusted_proxy_its_forwarded_values_are_believed(behind_one: Flask) -> None:
    seen = behind_one.test_client().get("/_seen", headers=SPOOFED).text
    assert seen == "203.0.113.9 https evil.example"


def test_behind_one_proxy_only_the_value_it_appended_counts(behind_one: Flask) -> None:
    """A client's own X-Forwarded-For arrives first in the list; our proxy appends the real one."""
    headers = {"X-Forwarded-For": "198.51.100.66, 203.0.113.9"}
    assert behind_one.test_client().get("/_seen", headers=headers).text.split()[0] == "203.0.113.9"


def test_behind_a_proxy_signatures_are_still_checked_against_the_public_url(
    behind_one: Flask,
) -> None:
    client = behind_one.test_client()
    forged = {
        **SPOOFED,
        **signed_headers(TEST_TOKEN, "https://evil.example/voice/incoming", FIELDS),
    }
    assert client.post("/voice/incoming", data=FIELDS, headers=forged).status_code == 403
    good = {**SPOOFED, **signed_headers(TEST_TOKEN, PUBLIC_URL + "/voice/incoming", FIELDS)}
    assert client.post("/voice/incoming", data=FIELDS, headers=good).status_code == 200


def _phone_spellings(number: str) -> list[str]:
    digits = number.lstrip("+")
    return [number, digits, "8" + digits[1:], digits[1:]]


def test_no_full_phone_number_reaches_the_logs_during_a_whole_call(
    frozen_app: Flask, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A good call, a garbled one, a database error mid-step and a rate-limited one."""
    with frozen_app.extensions["meterline"].sessions() as session:
        add_meter(session, add_account(session, phones=(CALLER,)), now=IN_WINDOW)
        session.commit()
    client = frozen_app.test_client()
    caplog.set_level(logging.DEBUG)
    call = TwilioClient(client, TEST_TOKEN, caller=CALLER)
    call.start()
    call.answer("112")
    call.answer("1")
    call.post("/voice/status", CallStatus="completed")
    garbled = TwilioClient(client, TEST_TOKEN, caller=CALLER)
    garbled.start()
    garbled.twiml("/voice/step?seq=9", Digits="1")  # a step from nowhere
    garbled.twiml("/voice/step?seq=abc")
    _fail_statements(
        frozen_app,
        monkeypatch,
        "UPDATE calls SET",
        "INSERT INTO rate_limit",
        "INSERT INTO counters",
    )
    assert garbled.twiml("/voice/step?seq=1", Digits="112").find("Hangup") is not None
    assert TwilioClient(client, TEST_TOKEN, caller=CALLER).start().find("Hangup") is not None
    monkeypatch.undo()
    assert TwilioClient(client, TEST_TOKEN, caller=CALLER).start().find("Gather") is not None
    TwilioClient(client, TEST_TOKEN, caller=CALLER).start()  # the fourth call this hour
    with frozen_app.extensions["meterline"].sessions() as session:
        reasons = set(session.scalars(select(Flag.reason)))
    assert {"system_error", "rate_limited"} <= reasons  # every path above was taken
    logged = caplog.text
    assert "webhook" in logged  # the failures were logged...
    for spelling in _phone_spellings(CALLER):
        assert spelling not in logged  # ...but never with the caller's number


def _fail_statements(app: Flask, monkeypatch: pytest.MonkeyPatch, *fragments: str) -> None:
    """Make the database fail on statements whose parameters hold the caller's number, on the
    ORM's path (SQLAlchemy's execute) and on the step's hot path (storage.steps)."""
    dialect = app.extensions["meterline"].engine.dialect
    execute = dialect.do_execute
    error = dialect.loaded_dbapi.OperationalError

    def failing(cursor, statement, parameters, context=None):  # type: ignore[no-untyped-def]
        if any(fragment in statement for fragment in fragments):
            raise error("server closed the connection")
        return execute(cursor, statement, parameters, context)

    def failing_on(method):  # type: ignore[no-untyped-def]
        def failing_run(store, conn, statements):  # type: ignore[no-untyped-def]
            if any(fragment in sql for sql, _ in statements for fragment in fragments):
                orig = error("server closed the connection")
                raise DBAPIError.instance(statements[-1][0], None, orig, store.dbapi_error)
            return method(store, conn, statements)

        return failing_run

    monkeypatch.setattr(dialect, "do_execute", failing)
    # Both ways the hot path sends statements: a step's write, the incoming's reads.
    monkeypatch.setattr(StepStore, "_run", failing_on(StepStore._run))
    monkeypatch.setattr(StepStore, "fetch_each", failing_on(StepStore.fetch_each))


def test_the_hourly_limit_holds_across_two_server_processes(
    database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    """The count lives in the database: calls alternating between two servers (as between
    workers, but deterministically) cannot go round it."""
    with Session(clean_db) as session:
        add_meter(session, add_account(session, phones=(CALLER,)))
        session.commit()
    extra = {"METERLINE_CALLS_PER_HOUR": "3"}
    with (
        serving(database_url, tmp_path / "a.log", workers=1, extra=extra) as first,
        serving(database_url, tmp_path / "b.log", workers=1, extra=extra) as second,
    ):
        greeted = []
        for n in range(6):
            server = (first, second)[n % 2]
            fields = {**FIELDS, "CallSid": f"CA{n:032d}", "CallStatus": "ringing"}
            url = server.url + "/voice/incoming"
            answer = requests.post(
                url, data=fields, headers=signed_headers(TEST_TOKEN, url, fields), timeout=10
            )
            assert answer.status_code == 200
            greeted.append("<Gather" in answer.text)
    assert greeted == [True, True, True, False, False, False]
    with clean_db.connect() as conn:
        assert (
            conn.scalar(select(func.count()).select_from(Flag).where(Flag.reason == "rate_limited"))
            == 3
        )  # noqa: E501

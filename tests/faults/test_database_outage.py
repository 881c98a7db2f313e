"""PostgreSQL goes away mid-call (cut at a TCP proxy, the shared server is never stopped).

The caller hears an apology, never an HTTP error; the step that failed leaves nothing
behind; and the line works again by itself once the database is back.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ivr import create_app
from storage.models import Call, CallEvent, CallReply, Counter, Reading
from tests.conftest import TEST_TOKEN
from tests.faults.proxy import CuttableProxy, cuttable
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttableProxy]:
    """A cuttable line to the test database's PostgreSQL server."""
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set METERLINE_TEST_DATABASE_URL")
    with cuttable(database_url) as line:
        yield line


@pytest.fixture
def line_app(
    proxy: CuttableProxy, database_url: str, app_config: dict[str, str], clean_db: Engine
) -> Iterator[Flask]:
    """The app talking to PostgreSQL through the proxy, one account with one meter."""
    with Session(clean_db) as session:
        add_meter(session, add_account(session), now=IN_WINDOW)
        session.commit()
    app = create_app(dict(app_config, METERLINE_DATABASE_URL=proxy.url_for(database_url)))
    app.extensions["meterline"].clock = lambda: IN_WINDOW
    yield app
    app.extensions["meterline"].engine.dispose()


def _is_apology(root: ET.Element) -> bool:
    return (
        root.tag == "Response"
        and root.find("Say") is not None
        and root.find("Hangup") is not None
        and root.find("Gather") is None
    )


def _footprint(engine: Engine) -> tuple[int, int, int, int]:
    """What the line has written: the call's step, its events and replies, readings."""
    with engine.connect() as conn:
        return (
            int(conn.scalar(select(func.max(Call.seq))) or 0),
            int(conn.scalar(select(func.count()).select_from(CallEvent)) or 0),
            int(conn.scalar(select(func.count()).select_from(CallReply)) or 0),
            int(
                conn.scalar(
                    select(func.count()).select_from(Reading).where(Reading.source == "ivr")
                )
                or 0
            ),  # noqa: E501
        )


def test_the_database_going_away_mid_call_gets_an_apology_and_writes_nothing_half(
    line_app: Flask, proxy: CuttableProxy, clean_db: Engine
) -> None:
    caller = TwilioClient(line_app.test_client(), TEST_TOKEN)
    caller.start()
    caller.answer("112")
    before = _footprint(clean_db)
    proxy.cut()
    gather = caller.last.find("Gather") if caller.last is not None else None
    assert gather is not None
    response = caller.post(gather.get("action", ""), Digits="1")
    assert response.status_code == 200
    root = ET.fromstring(response.data)
    assert _is_apology(root) and "позвоните позже" in spoken_text(root)
    proxy.restore()
    assert _footprint(clean_db) == before  # the confirmation's transaction left no trace


def test_the_line_resumes_by_itself_when_the_database_is_back(
    line_app: Flask, proxy: CuttableProxy, clean_db: Engine
) -> None:
    client = line_app.test_client()
    proxy.cut()
    assert _is_apology(TwilioClient(client, TEST_TOKEN).start())
    proxy.restore()
    caller = TwilioClient(client, TEST_TOKEN)
    assert caller.start().find("Gather") is not None
    caller.answer("112")
    assert "Принято." in spoken_text(caller.answer("1"))
    assert _footprint(clean_db)[3] == 1


def test_a_database_restart_between_two_steps_goes_unnoticed(
    line_app: Flask, proxy: CuttableProxy, clean_db: Engine
) -> None:
    """Every pooled connection dies with the restart; the pool notices and reconnects."""
    caller = TwilioClient(line_app.test_client(), TEST_TOKEN)
    caller.start()
    caller.answer("112")
    proxy.cut()
    proxy.restore()
    assert "Принято." in spoken_text(caller.answer("1"))
    with clean_db.connect() as conn:
        assert [
            str(v) for v in conn.scalars(select(Reading.value).where(Reading.source == "ivr"))
        ] == ["112"]  # noqa: E501


def test_a_database_restart_before_a_call_comes_in_goes_unnoticed(
    line_app: Flask, proxy: CuttableProxy, clean_db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The incoming's reads (one pipeline) meet a pooled connection that died: they run again
    on a new one, the caller is found by number, and the call is counted once."""
    first = TwilioClient(line_app.test_client(), TEST_TOKEN)
    assert first.start().find("Gather") is not None
    proxy.cut()
    proxy.restore()
    second = TwilioClient(line_app.test_client(), TEST_TOKEN)
    assert second.start().find("Gather") is not None
    assert "database connection lost; reconnecting for call" in caplog.text
    with Session(clean_db) as session:
        counter = session.get(Counter, f"calls:{second.caller}")
        assert counter is not None and counter.count == 2
        calls = session.scalars(select(Call.account_id)).all()
        assert len(calls) == 2 and None not in calls  # both found by caller ID


def test_a_hung_database_with_connect_timeout_gets_an_apology_within_twilios_15_s(
    proxy: CuttableProxy, database_url: str, app_config: dict[str, str], clean_db: Engine
) -> None:
    """A server that accepts connections and never answers. Without libpq's connect_timeout
    in METERLINE_DATABASE_URL the webhook waits forever (Twilio gives up at 15 s); with it,
    the caller hears the apology after two tries (the step, then the system_error flag)."""
    url = (
        make_url(proxy.url_for(database_url))
        .update_query_dict({"connect_timeout": "2"})
        .render_as_string(hide_password=False)
    )
    app = create_app(dict(app_config, METERLINE_DATABASE_URL=url))
    try:
        proxy.hang()
        started = time.monotonic()
        root = TwilioClient(app.test_client(), TEST_TOKEN).start()
        assert _is_apology(root) and time.monotonic() - started < 8  # two tries of 2 s
    finally:
        proxy.restore()
        app.extensions["meterline"].engine.dispose()

"""Odd requests from a signed-in operator get a page or a 404, never a 500 with a traceback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.services import Services
from tests.browser.seed import ACCOUNT, operator, seed
from tests.webhooks.test_operator_access import sign_in, token

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.fixture
def olga(app: Flask) -> FlaskClient:
    """A client signed in as an operator, with the review seed data in place."""
    svc: Services = app.extensions["meterline"]
    svc.clock = lambda: NOW
    with svc.sessions() as session:
        seed(session, NOW, svc.settings.audio_dir)
        operator(session, "olga")
    client = app.test_client()
    assert sign_in(client, "olga") == 302
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/operator/?page=²",
        "/operator/?page=99999999999999999999999",
        "/operator/?endpoint=x",
        "/operator/?_external=1&_scheme=javascript",
        "/operator/?_anchor=x&reason=anomaly",
    ],
)
def test_the_queue_ignores_query_arguments_it_does_not_know(olga: FlaskClient, url: str) -> None:
    page = olga.get(url)
    assert page.status_code == 200
    assert "javascript:" not in page.text


@pytest.mark.parametrize("name", ["x%00.wav", "%00", "a/%00/b.wav"])
def test_a_recording_name_with_a_nul_byte_is_not_found(olga: FlaskClient, name: str) -> None:
    assert olga.get(f"/operator/audio/{name}").status_code == 404


@pytest.mark.parametrize("meter_id", ["²", "١", "99999999999999999999", "-1", ""])
def test_manual_entry_with_a_strange_meter_id_says_there_is_no_such_meter(
    olga: FlaskClient, meter_id: str
) -> None:
    form = {"meter_id": meter_id, "value": "120", "csrf_token": token(olga, "/operator/")}
    answer = olga.post(f"/operator/accounts/{ACCOUNT}/readings", data=form)
    assert answer.status_code == 302
    assert "Нет такого счётчика" in olga.get(answer.headers["Location"]).text


@pytest.mark.parametrize(
    "target", ["/operator/\r\nSet-Cookie: x=1", "/operator/\nx", "/operator/\x00"]
)
def test_sign_in_with_a_control_character_in_next_goes_to_the_queue(
    app: Flask, olga: FlaskClient, target: str
) -> None:
    client = app.test_client()
    data = {
        "login": "olga",
        "password": "correct horse battery",
        "next": target,
        "csrf_token": token(client),
    }
    answer = client.post("/operator/sign-in", data=data)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/operator/"

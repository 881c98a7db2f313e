"""Every webhook is validated against METERLINE_PUBLIC_URL with the real twilio SDK."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from ivr.voice import signature
from storage.models import Call, CallEvent, Reading
from tests.conftest import TEST_TOKEN
from tests.support.twilio import PUBLIC_URL, signed_headers

FIELDS = {"CallSid": "CA" + "1" * 32, "From": "+79211234567", "To": "+78172597904"}
WEBHOOKS = ["/voice/incoming", "/voice/step?seq=1", "/voice/status"]


def _count(app: Flask, model: type) -> int:
    with app.extensions["meterline"].sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _nothing_stored(app: Flask) -> bool:
    return all(_count(app, m) == 0 for m in (Call, CallEvent, Reading))


@pytest.mark.parametrize("path", WEBHOOKS)
def test_it_refuses_a_request_without_signature(app: Flask, path: str) -> None:
    response = app.test_client().post(path, data=FIELDS)
    assert response.status_code == 403
    assert _nothing_stored(app)


@pytest.mark.parametrize("path", WEBHOOKS)
def test_it_refuses_a_request_signed_with_another_token(app: Flask, path: str) -> None:
    headers = signed_headers("not-our-token", PUBLIC_URL + path, FIELDS)
    response = app.test_client().post(path, data=FIELDS, headers=headers)
    assert response.status_code == 403
    assert _nothing_stored(app)


def test_it_refuses_a_signature_replayed_with_other_parameters(app: Flask) -> None:
    headers = signed_headers(TEST_TOKEN, PUBLIC_URL + "/voice/incoming", FIELDS)
    tampered = dict(FIELDS, From="+79990000000")
    response = app.test_client().post("/voice/incoming", data=tampered, headers=headers)
    assert response.status_code == 403
    assert _nothing_stored(app)


def test_a_form_with_a_repeated_field_is_checked_over_every_pair(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check signs the form's pairs as parsed (ivr.request.FORM_PAIRS), never walking the
    MultiDict: a repeated name counts each of its values, as the SDK's validator counts a
    MultiDict's."""
    path = "/voice/status"
    pairs = [*FIELDS.items(), ("CallStatus", "completed"), ("Extra", "a"), ("Extra", "b")]

    def post(signed: MultiDict[str, str]) -> int:
        headers = signed_headers(TEST_TOKEN, PUBLIC_URL + path, signed)
        return app.test_client().post(path, data=urlencode(pairs), headers=headers,
                                      content_type="application/x-www-form-urlencoded"
                                      ).status_code  # fmt: skip

    monkeypatch.setattr(signature, "_signed_fields", lambda _form: pytest.fail("MultiDict"))
    assert post(MultiDict(pairs)) == 200
    assert post(MultiDict([p for p in pairs if p != ("Extra", "b")])) == 403


def test_it_refuses_a_signature_made_for_the_internal_url(app: Flask) -> None:
    """Behind a proxy Twilio signs the public URL; a signature over http://localhost fails."""
    headers = signed_headers(TEST_TOKEN, "http://localhost/voice/incoming", FIELDS)
    response = app.test_client().post("/voice/incoming", data=FIELDS, headers=headers)
    assert response.status_code == 403


def test_it_refuses_a_signature_for_another_step(app: Flask) -> None:
    headers = signed_headers(TEST_TOKEN, PUBLIC_URL + "/voice/step?seq=1", FIELDS)
    response = app.test_client().post("/voice/step?seq=2", data=FIELDS, headers=headers)
    assert response.status_code == 403


def test_forwarded_headers_do_not_change_what_is_validated(app: Flask) -> None:
    """X-Forwarded-Host from a client cannot make a signature over its own host valid."""
    headers = signed_headers(TEST_TOKEN, "https://evil.example/voice/incoming", FIELDS)
    headers.update({"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
    response = app.test_client().post("/voice/incoming", data=FIELDS, headers=headers)
    assert response.status_code == 403


def test_it_accepts_the_public_url_signature_behind_a_proxy(app: Flask) -> None:
    """The request reaches us as http://localhost; Twilio signed https://ivr.example.org."""
    headers = signed_headers(TEST_TOKEN, PUBLIC_URL + "/voice/status", FIELDS)
    response = app.test_client().post(
        "/voice/status", data=dict(FIELDS, CallStatus="completed"), headers=headers
    )
    # CallStatus is part of the signed fields: sign what we send.
    assert response.status_code == 403
    fields = dict(FIELDS, CallStatus="completed")
    headers = signed_headers(TEST_TOKEN, PUBLIC_URL + "/voice/status", fields)
    response = app.test_client().post("/voice/status", data=fields, headers=headers)
    assert response.status_code == 200


def test_without_a_token_every_webhook_is_refused(
    app_config: dict[str, str], clean_db: object
) -> None:
    from ivr import create_app

    config = dict(app_config, TWILIO_AUTH_TOKEN="")
    application = create_app(config)
    headers = signed_headers("", PUBLIC_URL + "/voice/incoming", FIELDS)
    response = application.test_client().post("/voice/incoming", data=FIELDS, headers=headers)
    assert response.status_code == 403
    application.extensions["meterline"].engine.dispose()

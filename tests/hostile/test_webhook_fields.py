"""Property tests: whatever arrives in a webhook's fields, the caller hears TwiML, never a 5xx.

Random, missing, huge, control-character and invalid-UTF-8 values in every field of every
webhook, signed for real (tests/support/twilio.py): the answer is 200 with a <Response>
document (or an empty 200 for status callbacks); unsigned, it is 403 and nothing is written;
and nothing the line stores ever comes from garbage. The number parser's and the CSV
importers' properties live in tests/unit/test_speech_numbers.py and
tests/integration/test_import_properties.py.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any
from urllib.parse import quote, quote_from_bytes

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from ivr.guards import DEFAULT_MAX_BODY
from storage.models import Call, CallEvent, Reading
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import PUBLIC_URL, TwilioClient, signed_headers
from tests.webhooks.conftest import IN_WINDOW

LIVE_SID = "CA" + "a" * 32  # a call in progress, so random steps also reach a real call
FORM = "application/x-www-form-urlencoded"
FIELDS = ("CallSid", "AccountSid", "From", "To", "Caller", "CallStatus", "Direction",
          "Digits", "FinishedOnKey", "SpeechResult", "Confidence", "RecordingUrl")  # fmt: skip
HOSTILE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

control = st.text(st.characters(min_codepoint=0, max_codepoint=31), max_size=20)
huge = st.builds(
    lambda chunk, n: chunk * n,
    st.sampled_from(["9", "я", "\x00", "+7", "*#", "CA", "%FF"]),
    st.integers(1_000, 40_000),
)
value = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[0-9*#]{0,45}", fullmatch=True),
    control,
    huge,
    st.sampled_from(["+79211234567", "89211234567", "597904", "anonymous", "", "+", "0" * 20,
                     "completed", "ringing", "in-progress", "1", "112", "112*5", "#", "*"]),
)  # fmt: skip
# Half the requests belong to the call in progress, at its current step or near it.
call_sid = st.one_of(
    st.just(LIVE_SID), value, st.just(LIVE_SID), st.from_regex(r"CA[0-9a-f]{32}", fullmatch=True)
)
seq = st.one_of(
    st.sampled_from(["1", "2", "3"]),
    st.none(),
    st.integers(-3, 8).map(str),
    st.integers(10**6, 10**30).map(str),
    st.text(max_size=12),
)
fields = st.fixed_dictionaries(
    {}, optional={name: value for name in FIELDS if name != "CallSid"}
).flatmap(lambda form: st.one_of(st.just(form), call_sid.map(lambda sid: {**form, "CallSid": sid})))
webhook = st.sampled_from(["incoming", "step", "status"])


@pytest.fixture
def live_call(frozen_app: Flask) -> FlaskClient:
    """A test client, with account 1001001 (one meter, last reading 109) in a call."""
    with frozen_app.extensions["meterline"].sessions() as session:
        add_meter(session, add_account(session), now=IN_WINDOW)
        session.commit()
    client = frozen_app.test_client()
    caller = TwilioClient(client, TEST_TOKEN, call_sid=LIVE_SID)
    assert caller.start().find("Gather") is not None
    return client


def _path(hook: str, step: str | None) -> str:
    if hook != "step":
        return f"/voice/{hook}"
    return "/voice/step" + ("" if step is None else "?seq=" + quote(step, safe=""))


def _counts(app: Flask) -> tuple[int, int, int]:
    with app.extensions["meterline"].sessions() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Call, CallEvent, Reading)
        )


def assert_answered(response: Any, hook: str) -> None:
    """200 and a TwiML <Response> (status callbacks: an empty 200)."""
    assert response.status_code == 200, (response.status_code, response.data[:300])
    if hook == "status":
        return
    root = ET.fromstring(response.data)
    assert root.tag == "Response" and len(root) > 0
    event(f"{hook}: " + ("a prompt" if root.find("Gather") is not None else "a parting word"))


def assert_nothing_from_garbage(app: Flask) -> None:
    """Every call has a well-formed CallSid and caller; every reading passed the checks."""
    with app.extensions["meterline"].sessions() as session:
        for sid, caller in session.execute(select(Call.call_sid, Call.caller)):
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}", sid)  # as calls.CALL_SID
            assert caller == "" or re.fullmatch(r"\+\d{10,15}", caller), caller
        for value, status in session.execute(
            select(Reading.value, Reading.status).where(Reading.source == "ivr")
        ):
            assert Decimal("109") <= value < Decimal("100000") and status in (
                "accepted", "flagged"
            )  # fmt: skip


@HOSTILE
@given(hook=webhook, step=seq, form=fields)
def test_any_signed_fields_get_twiml_and_never_store_garbage(
    frozen_app: Flask, live_call: FlaskClient, hook: str, step: str | None, form: dict[str, str]
) -> None:
    path = _path(hook, step)
    headers = signed_headers(TEST_TOKEN, PUBLIC_URL + path, form)
    before = _counts(frozen_app)
    response = live_call.post(path, data=form, headers=headers)
    if _too_large(form):  # Twilio's forms are a few KB: refused unread, the apology
        assert_answered(response, hook)
        assert _counts(frozen_app) == before
        return
    assert_answered(response, hook)
    assert_nothing_from_garbage(frozen_app)


def _too_large(form: dict[str, str]) -> bool:
    """Whether the body the test client sends for `form` is over the server's limit."""
    environ = EnvironBuilder(method="POST", data=form).get_environ()
    return int(environ.get("CONTENT_LENGTH") or 0) > DEFAULT_MAX_BODY


@HOSTILE
@given(
    hook=webhook,
    step=seq,
    form=fields,
    forgery=st.sampled_from(["none", "other token", "other url", "other fields", "garbage"]),
)
def test_any_unsigned_or_forged_request_is_refused_and_writes_nothing(
    frozen_app: Flask,
    live_call: FlaskClient,
    hook: str,
    step: str | None,
    form: dict[str, str],
    forgery: str,
) -> None:
    path = _path(hook, step)
    url = PUBLIC_URL + path
    headers = {
        "none": {},
        "other token": signed_headers("not-" + TEST_TOKEN, url, form),
        "other url": signed_headers(TEST_TOKEN, "https://evil.example" + path, form),
        "other fields": signed_headers(TEST_TOKEN, url, {**form, "Digits": "1x"}),
        "garbage": {"X-Twilio-Signature": "\x01" * 3 + "=="},
    }[forgery]
    before = _counts(frozen_app)
    response = live_call.post(path, data=form, headers=headers)
    assert response.status_code == (200 if _too_large(form) else 403)  # 200: the apology
    assert _counts(frozen_app) == before


def _encode(pairs: list[tuple[str, bytes]], raw: bool) -> bytes:
    """A form body: values percent-encoded, or (raw) their bytes as they are."""
    parts = []
    for name, data in pairs:
        if raw:
            data = data.replace(b"&", b"").replace(b"=", b"").replace(b"%", b"")
            parts.append(name.encode() + b"=" + data)
        else:
            parts.append(f"{name}={quote_from_bytes(data)}".encode())
    return b"&".join(parts)


def _as_decoded(body: bytes) -> Any:
    """The form exactly as Werkzeug will decode it on our side: what Twilio would have signed."""
    environ = EnvironBuilder(method="POST", data=body, content_type=FORM).get_environ()
    return Request(environ).form


@HOSTILE
@given(
    hook=webhook,
    pairs=st.lists(
        st.tuples(st.sampled_from(FIELDS), st.binary(max_size=60)), min_size=1, max_size=8
    ),
    raw=st.booleans(),
    with_live_sid=st.booleans(),
)
def test_invalid_utf8_in_the_raw_body_gets_twiml_not_an_error(
    frozen_app: Flask,
    live_call: FlaskClient,
    hook: str,
    pairs: list[tuple[str, bytes]],
    raw: bool,
    with_live_sid: bool,
) -> None:
    if with_live_sid:
        pairs = [("CallSid", LIVE_SID.encode()), *pairs]
    body = _encode(pairs, raw)
    path = _path(hook, "1")
    headers = signed_headers(TEST_TOKEN, PUBLIC_URL + path, _as_decoded(body))
    response = live_call.post(path, data=body, content_type=FORM, headers=headers)
    assert_answered(response, hook)
    assert_nothing_from_garbage(frozen_app)


@pytest.mark.parametrize("hook", ["incoming", "step", "status"])
def test_a_form_too_large_to_read_gets_the_apology_and_stores_nothing(
    frozen_app: Flask, hook: str
) -> None:
    """Past Flask's MAX_FORM_MEMORY_SIZE (Twilio's forms are a few kB) nothing can be verified:
    an apology (an empty 200 for status callbacks), never a 413."""
    path = _path(hook, "1")
    form = {"CallSid": LIVE_SID, "Digits": "я" * 100_000}
    headers = signed_headers(TEST_TOKEN, PUBLIC_URL + path, form)
    response = frozen_app.test_client().post(path, data=form, headers=headers)
    assert response.status_code == 200
    if hook == "status":
        assert response.data == b""
    else:
        root = ET.fromstring(response.data)
        assert root.tag == "Response" and root.find("Hangup") is not None
    with frozen_app.extensions["meterline"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(Call)) == 0

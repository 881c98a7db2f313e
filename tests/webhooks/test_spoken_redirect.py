"""Spoken answers heard at once: the stream's final result redirects the live call through
Twilio's REST API (the real twilio SDK, pointed at a local stand-in for api.twilio.com)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from flask import Flask
from werkzeug.serving import make_server

from ivr.config import load_settings
from ivr.streams import FACTORY_KEY, stream_token
from ivr.streams.client import stream_wav
from ivr.voice.redirect import SpokenAnswers, TwilioRedirector, redirector_from
from speech.recognizer import FakeRecognizer
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW
from tests.webhooks.test_streams import tone_wav

ACCOUNT = "AC" + "a" * 32


@dataclass
class FakeTwilioApi:
    """Twilio's Calls resource on 127.0.0.1: records each update, answers like Twilio."""

    status: int = 200
    updates: list[dict[str, object]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def api() -> Iterator[FakeTwilioApi]:
    fake = FakeTwilioApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            auth = base64.b64decode(self.headers["Authorization"].split()[1]).decode()
            fake.updates.append({"path": self.path, "form": form, "auth": auth})
            body = json.dumps({"sid": self.path.rsplit("/", 1)[-1][:-5], "status": "in-progress"})
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_port}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def app_config(app_config: dict[str, str], api: FakeTwilioApi) -> dict[str, str]:
    # A vosk URL enables the stream endpoint; the tests swap in a fake recognizer.
    return {
        **app_config,
        "METERLINE_VOSK_URL": "ws://127.0.0.1:9",
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "METERLINE_TWILIO_API_URL": api.url,
    }


@pytest.fixture
def ws_url(frozen_app: Flask) -> Iterator[str]:
    frozen_app.extensions["meterline"].cache[FACTORY_KEY] = lambda: FakeRecognizer(
        ["сто двадцать три и пять десятых"], utterance_seconds=0.5
    )
    server = make_server("127.0.0.1", 0, frozen_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.server_port}/voice/stream"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def at_value_prompt(twilio: TwilioClient, ws_url: str, one_meter: int, tmp_path: Path) -> str:
    """A call whose stream connected, now at its first value prompt (step 2)."""
    root = twilio.start()
    redirect = root.find("Redirect")
    assert redirect is not None
    token = stream_token("test-secret-key", twilio.call_sid)
    # The stream's start marks the call as listening; no audio yet.
    stream_wav(ws_url, twilio.call_sid, token, tone_wav(tmp_path / "quiet.wav", seconds=0))
    root = twilio.twiml(redirect.text or "")
    assert "Назовите показание" in spoken_text(root)
    return token


@pytest.fixture
def one_meter(frozen_app: Flask) -> int:
    with frozen_app.extensions["meterline"].sessions() as session:
        meter = add_meter(session, add_account(session), now=IN_WINDOW)
        session.commit()
        return meter.id


def test_a_final_result_redirects_the_live_call_to_its_step(
    twilio: TwilioClient, ws_url: str, at_value_prompt: str, api: FakeTwilioApi, tmp_path: Path
) -> None:
    stream_wav(ws_url, twilio.call_sid, at_value_prompt, tone_wav(tmp_path / "a.wav"))
    [update] = api.updates
    assert update["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{twilio.call_sid}.json"
    assert update["form"] == {"Url": "https://ivr.example.org/voice/step?seq=2", "Method": "POST"}
    assert update["auth"] == f"{ACCOUNT}:{TEST_TOKEN}"
    # Twilio then requests the step: the flow answers what was said.
    root = twilio.twiml("/voice/step?seq=2")
    assert "Вы назвали: сто двадцать три целых пять десятых" in spoken_text(root)


def test_keys_pressed_first_win_and_no_redirect_is_sent(
    twilio: TwilioClient, ws_url: str, at_value_prompt: str, api: FakeTwilioApi, tmp_path: Path
) -> None:
    root = twilio.answer("140")
    assert "Вы ввели: сто сорок" in spoken_text(root)
    # Speech arriving for the confirmation step is a yes/no step, so it is redirected; speech
    # tagged to the value step after the keys moved the call on is not.
    svc = twilio.client.application.extensions["meterline"]
    answers = SpokenAnswers(svc.settings, svc.sessions, TwilioRedirector(ACCOUNT, "t", api.url))
    assert answers.heard(twilio.call_sid, 2) is False
    assert api.updates == []


def test_a_failing_rest_api_leaves_the_gather_to_bring_the_answer_in(
    twilio: TwilioClient, ws_url: str, at_value_prompt: str, api: FakeTwilioApi, tmp_path: Path
) -> None:
    api.status = 500
    stream_wav(ws_url, twilio.call_sid, at_value_prompt, tone_wav(tmp_path / "a.wav"))
    assert len(api.updates) == 1
    root = twilio.twiml("/voice/step?seq=2")  # the Gather timed out
    assert "Вы назвали: сто двадцать три целых пять десятых" in spoken_text(root)


def test_without_an_account_sid_no_redirect_is_configured(app_config: dict[str, str]) -> None:
    env = {k: v for k, v in app_config.items() if k != "TWILIO_ACCOUNT_SID"}
    assert redirector_from(load_settings(env)) is None
    assert redirector_from(load_settings(app_config)) is not None

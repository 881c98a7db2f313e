"""A `meterline serve` worker's app (`create_app(serving=True)`): on SQLite its webhooks take
turns, and a spoken step waiting for its utterance lets the others in meanwhile."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ivr.voice.speech import WAIT_FOR_UTTERANCE, mark_stream_started
from storage.incoming import IncomingStore
from tests.conftest import TEST_TOKEN
from tests.support.twilio import TwilioClient
from tests.webhooks.conftest import IN_WINDOW, app_with_a_meter


@pytest.fixture
def speech_config(app_config: dict[str, str], clean_db: object, tmp_path: Path) -> dict[str, str]:
    model = tmp_path / "model"
    model.mkdir()
    return dict(app_config, METERLINE_VOSK_MODEL=str(model))


@pytest.fixture
def serving_app(speech_config: dict[str, str]) -> Iterator[Flask]:
    app = app_with_a_meter(speech_config, IN_WINDOW, serving=True)
    yield app
    app.extensions["meterline"].engine.dispose()


def _phone(app: Flask) -> TwilioClient:
    return TwilioClient(app.test_client(), TEST_TOKEN)


@pytest.mark.parametrize("serving", [True, False])
def test_a_serving_app_answers_its_webhooks_one_at_a_time(
    app_config: dict[str, str], clean_db: object, monkeypatch: pytest.MonkeyPatch, serving: bool
) -> None:
    app = app_with_a_meter(app_config, IN_WINDOW, serving=serving)
    read = IncomingStore.read
    inside, most, lock = [0], [0], threading.Lock()

    def slow_read(self: IncomingStore, *args: Any, **kwargs: Any) -> Any:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.2)
        with lock:
            inside[0] -= 1
        return read(self, *args, **kwargs)

    monkeypatch.setattr(IncomingStore, "read", slow_read)
    answers: list[ET.Element] = []
    threads = [threading.Thread(target=lambda: answers.append(_phone(app).start())) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    app.extensions["meterline"].engine.dispose()
    assert len(answers) == 2  # both answered, neither refused for waiting
    # SQLite's webhooks take turns; PostgreSQL settles concurrent writers itself.
    takes_turns = serving and app_config["METERLINE_DATABASE_URL"].startswith("sqlite")
    assert most[0] == (1 if takes_turns else 2)


def test_a_spoken_step_waiting_for_its_utterance_does_not_hold_other_calls(
    serving_app: Flask,
) -> None:
    waiting = _phone(serving_app)
    first = waiting.start()
    mark_stream_started(serving_app.extensions["meterline"].sessions, waiting.call_sid)
    redirect = first.find("Redirect")
    assert redirect is not None and redirect.text
    waiting.twiml(redirect.text)  # the first prompt, inviting speech
    took: list[float] = []

    def silent_answer() -> None:  # no utterance comes: it waits WAIT_FOR_UTTERANCE
        started = time.monotonic()
        waiting.answer(None)
        took.append(time.monotonic() - started)

    runner = threading.Thread(target=silent_answer)
    runner.start()
    time.sleep(0.2)
    started = time.monotonic()
    other = _phone(serving_app).start()
    other_took = time.monotonic() - started
    runner.join()
    assert other.find("Redirect") is not None
    assert took[0] >= WAIT_FOR_UTTERANCE * 0.9
    assert other_took < 0.4  # the turn's wait is 0.5 s: it did not wait for the turn
    assert waiting.last is not None and waiting.last.find("Gather") is not None  # asked again


def test_meterline_serve_builds_each_workers_app_serving(
    app_config: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What gunicorn's worker loads is the app whose webhooks take turns."""
    from gunicorn.app.base import BaseApplication

    import ivr
    from ivr.commands.serve import gunicorn_options, run_gunicorn

    for key, value in app_config.items():
        monkeypatch.setenv(key, value)
    built: list[dict[str, Any]] = []
    real = ivr.create_app

    def recording(*args: Any, **kwargs: Any) -> Flask:
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ivr, "create_app", recording)
    monkeypatch.setattr(BaseApplication, "run", lambda self: self.load())
    run_gunicorn(gunicorn_options("127.0.0.1", 0, 1, 1))
    assert built == [{"serving": True}]

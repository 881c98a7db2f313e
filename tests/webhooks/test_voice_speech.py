"""Speech at the webhooks: the stream is started, prompts invite speech only when it connected,
and an utterance stored for a step becomes the value (keys win when both come)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from ivr import create_app
from ivr.voice.speech import mark_stream_started
from storage.models import Reading, Utterance
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW


@pytest.fixture
def speech_app(app_config: dict[str, str], clean_db: object, tmp_path: Path) -> Iterator[Flask]:
    """The app with a recognizer configured (the model is loaded only by the stream itself)."""
    model = tmp_path / "model"
    model.mkdir()
    application = create_app(dict(app_config, METERLINE_VOSK_MODEL=str(model)))
    application.extensions["meterline"].clock = lambda: IN_WINDOW
    with application.extensions["meterline"].sessions() as session:
        add_meter(session, add_account(session), now=IN_WINDOW)
        session.commit()
    yield application
    application.extensions["meterline"].engine.dispose()


@pytest.fixture
def phone(speech_app: Flask) -> TwilioClient:
    return TwilioClient(speech_app.test_client(), TEST_TOKEN)


def _follow_redirect(phone: TwilioClient, root: ET.Element) -> ET.Element:
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text
    return phone.twiml(redirect.text)


def _say(app: Flask, sid: str, seq: int, text: str, confidence: float = 0.9) -> None:
    with app.extensions["meterline"].sessions() as session:
        session.add(Utterance(call_sid=sid, seq=seq, text=text, confidence=confidence))
        session.commit()


def test_the_call_starts_its_media_stream_with_a_signed_token(phone: TwilioClient) -> None:
    root = phone.start()
    stream = root.find("Start/Stream")
    assert stream is not None
    assert stream.get("url") == "wss://ivr.example.org/voice/stream"
    assert stream.get("track") == "inbound_track"
    token = stream.find("Parameter")
    assert token is not None and token.get("name") == "token" and len(token.get("value", "")) > 20
    assert root.find("Gather") is None  # no prompt before we know the stream works


def test_without_a_connected_stream_prompts_only_say_key_in(phone: TwilioClient) -> None:
    root = _follow_redirect(phone, phone.start())
    text = spoken_text(root).lower()
    assert "наберите" in text and "назовите" not in text and "скажите" not in text


def test_a_spoken_value_is_read_back_and_stored_with_its_transcript(
    speech_app: Flask, phone: TwilioClient
) -> None:
    first = phone.start()
    mark_stream_started(speech_app.extensions["meterline"].sessions, phone.call_sid)
    root = _follow_redirect(phone, first)
    assert "назовите" in spoken_text(root).lower()
    _say(speech_app, phone.call_sid, 2, "сто двенадцать и пять десятых")
    readback = phone.answer(None)
    assert "сто двенадцать целых пять десятых" in spoken_text(readback)
    assert "скажите" in spoken_text(readback).lower()
    _say(speech_app, phone.call_sid, 3, "да")
    phone.answer(None)
    with speech_app.extensions["meterline"].sessions() as session:
        reading = session.scalars(select(Reading).where(Reading.source == "ivr")).one()
    assert str(reading.value) == "112.5" and reading.input_mode == "speech"
    assert reading.transcript == "сто двенадцать и пять десятых"


def test_keys_win_when_both_keys_and_speech_arrive(speech_app: Flask, phone: TwilioClient) -> None:
    first = phone.start()
    mark_stream_started(speech_app.extensions["meterline"].sessions, phone.call_sid)
    _follow_redirect(phone, first)
    _say(speech_app, phone.call_sid, 2, "девятьсот")
    readback = phone.answer("113")
    assert "сто тринадцать" in spoken_text(readback)


def test_an_unintelligible_utterance_asks_to_key_the_value_in(
    speech_app: Flask, phone: TwilioClient
) -> None:
    first = phone.start()
    mark_stream_started(speech_app.extensions["meterline"].sessions, phone.call_sid)
    _follow_redirect(phone, first)
    _say(speech_app, phone.call_sid, 2, "ну это самое")
    root = phone.answer(None)
    assert "наберите" in spoken_text(root).lower()
    assert root.find("Gather") is not None

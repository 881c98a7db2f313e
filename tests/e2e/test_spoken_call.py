"""A whole call where values are spoken: WAV audio over a real Media Streams WebSocket.

The server runs in a thread on loopback (real HTTP and WebSocket); only the recognizer is
replaced, by one that "hears" Russian text, since no Russian model can be installed here.
The plumbing with the real (Korean) Vosk model is tested in tests/integration.
"""

from __future__ import annotations

import math
import struct
import threading
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from ivr import create_app
from ivr.simulator.phone import SimulatedCall, scripted
from ivr.simulator.stream import LiveStream
from ivr.streams import FACTORY_KEY
from speech.recognizer import FakeRecognizer
from storage.models import CallEvent, Reading
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.server import free_port

HEARD = ["сто двенадцать и пять десятых", "да"]


def _tone(path: Path, seconds: float = 0.8) -> Path:
    """A mono 16-bit WAV: a 440 Hz tone standing in for the caller's voice."""
    rate, count = 16000, int(16000 * seconds)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        samples = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(count))
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


@pytest.fixture
def live_line(
    app_config: dict[str, str], clean_db: object, tmp_path: Path
) -> Iterator[tuple[Flask, str]]:
    """The app served on a loopback port, speech on, recognizer scripted to hear HEARD."""
    model = tmp_path / "model"
    model.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = dict(app_config, METERLINE_VOSK_MODEL=str(model), METERLINE_PUBLIC_URL=base)
    app = create_app(config)
    svc = app.extensions["meterline"]
    svc.clock = lambda: datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    texts = list(HEARD)
    svc.cache[FACTORY_KEY] = lambda: FakeRecognizer(texts=texts, utterance_seconds=1.5)
    with svc.sessions() as session:
        add_meter(session, add_account(session), now=svc.clock())
        session.commit()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, base
    finally:
        server.shutdown()
        thread.join(timeout=10)
        svc.engine.dispose()


def test_a_spoken_value_and_a_spoken_yes_store_the_reading_with_transcript_and_audio(
    live_line: tuple[Flask, str], tmp_path: Path
) -> None:
    app, base = live_line
    wav = _tone(tmp_path / "say.wav")
    phone = SimulatedCall(base_url=base, token=TEST_TOKEN, caller="+79211234567",
                          open_stream=LiveStream)  # fmt: skip
    transcript = phone.run(scripted(f"wav:{wav} wav:{wav}"))
    assert transcript.said("Назовите показание или наберите")
    assert transcript.said("сто двенадцать целых пять десятых")
    assert transcript.said("Принято одно показание.")
    with app.extensions["meterline"].sessions() as session:
        reading = session.scalars(select(Reading).where(Reading.source == "ivr")).one()
        events = list(session.scalars(select(CallEvent).where(CallEvent.audio_file.is_not(None))))
    assert str(reading.value) == "112.5"
    assert reading.input_mode == "speech" and reading.transcript == HEARD[0]
    assert reading.confidence == pytest.approx(0.9)
    assert (
        reading.audio_file
        and Path(app.extensions["meterline"].settings.audio_dir, reading.audio_file).exists()
        or Path(reading.audio_file or "").exists()
    )
    assert events, "the timeline links the utterance's audio"

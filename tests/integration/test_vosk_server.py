"""The recognizer over vosk-server's WebSocket protocol, against a stand-in on the real model.

The stand-in follows alphacep/vosk-server's websocket/asr_server.py message for message: a
config text frame, binary PCM frames each answered with a partial or a result, and the literal
`{"eof" : 1}` for the final result.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sock import Sock
from sqlalchemy import select
from werkzeug.serving import make_server

from ivr.streams import FACTORY_KEY, stream_token
from ivr.streams.client import stream_wav
from speech.audio import read_wav, resample
from speech.recognizer import recognizer_factory, transcribe
from speech.vosk_local import MODELS, LoadedModel
from speech.vosk_server import VoskServerRecognizer
from storage.models import Call, Utterance
from tests.integration.vosk_audio import KOREAN_DIGITS, korean_model, speech_wav


def stand_in_app(model: LoadedModel, configs: list[dict[str, Any]]) -> Flask:
    import vosk

    app = Flask("vosk_server_stand_in")

    def recognize(ws: Any) -> None:
        rec = None
        phrase_list, sample_rate, show_words = None, 8000.0, False
        while True:
            message = ws.receive()
            if isinstance(message, str) and "config" in message:
                config = json.loads(message)["config"]
                configs.append(config)
                phrase_list = config.get("phrase_list", phrase_list)
                sample_rate = float(config.get("sample_rate", sample_rate))
                show_words = bool(config.get("words", show_words))
                continue
            if rec is None:
                if phrase_list:
                    grammar = json.dumps(phrase_list, ensure_ascii=False)
                    rec = vosk.KaldiRecognizer(model.model, sample_rate, grammar)
                else:
                    rec = vosk.KaldiRecognizer(model.model, sample_rate)
                rec.SetWords(show_words)
            if message == '{"eof" : 1}':
                ws.send(rec.FinalResult())
                return
            ws.send(rec.Result() if rec.AcceptWaveform(message) else rec.PartialResult())

    Sock(app).route("/")(recognize)
    return app


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return MODELS.get(korean_model())


@pytest.fixture(scope="module")
def configs() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module")
def vosk_url(model: LoadedModel, configs: list[dict[str, Any]]) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, stand_in_app(model, configs), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


def telephone_audio(tmp_path: Path) -> bytes:
    pcm, rate = read_wav(speech_wav(tmp_path / "ko.wav"))
    return resample(pcm, rate, 8000)


def test_the_server_recognizes_with_our_grammar(
    vosk_url: str, configs: list[dict[str, Any]], tmp_path: Path
) -> None:
    recognizer = VoskServerRecognizer(vosk_url, grammar=KOREAN_DIGITS)
    try:
        results = transcribe(recognizer, telephone_audio(tmp_path))
    finally:
        recognizer.close()
    assert configs[-1] == {
        "sample_rate": 8000,
        "words": 1,
        "phrase_list": [*KOREAN_DIGITS, "[unk]"],
    }
    words = [w for r in results for w in r.text.split()]
    assert words and set(words) <= set(KOREAN_DIGITS)
    assert all(r.words and 0.0 <= r.confidence <= 1.0 for r in results)


def test_the_server_and_the_model_in_process_both_hear_grammar_words(
    vosk_url: str, model: LoadedModel, tmp_path: Path
) -> None:
    audio = telephone_audio(tmp_path)
    remote = VoskServerRecognizer(vosk_url, grammar=KOREAN_DIGITS)
    local_factory = recognizer_factory(model.path, None, KOREAN_DIGITS)
    assert local_factory is not None
    try:
        there = " ".join(r.text for r in transcribe(remote, audio))
    finally:
        remote.close()
    here = " ".join(r.text for r in transcribe(local_factory(), resample(audio, 8000, 16000)))
    assert there.split() and set(there.split()) <= set(KOREAN_DIGITS)
    assert here.split() and set(here.split()) <= set(KOREAN_DIGITS)


def test_a_url_selects_the_server_recognizer(vosk_url: str) -> None:
    factory = recognizer_factory(Path("/nonexistent"), vosk_url, ["да"])
    assert factory is not None
    recognizer = factory()
    try:
        assert isinstance(recognizer, VoskServerRecognizer)
        assert recognizer.final().text == ""
    finally:
        recognizer.close()


@pytest.fixture
def app_config(app_config: dict[str, str], vosk_url: str) -> dict[str, str]:
    return {**app_config, "METERLINE_VOSK_URL": vosk_url}


def test_a_call_stream_is_recognized_by_the_server_pool(
    app: Flask, vosk_url: str, tmp_path: Path
) -> None:
    sid = "CA" + "3" * 32
    svc = app.extensions["meterline"]
    # Free recognition: the Korean model knows none of the Russian grammar words.
    svc.cache[FACTORY_KEY] = lambda: VoskServerRecognizer(vosk_url)
    with svc.sessions() as db:
        db.add(Call(call_sid=sid, seq=2))
        db.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"ws://127.0.0.1:{server.server_port}/voice/stream"
        stream_wav(url, sid, stream_token("test-secret-key", sid), speech_wav(tmp_path / "a.wav"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    with svc.sessions() as db:
        rows = list(db.scalars(select(Utterance).where(Utterance.seq >= 0)))
    assert rows and all(u.call_sid == sid and u.seq == 2 and u.text for u in rows)


def test_after_a_final_result_more_audio_opens_a_new_session_on_the_same_clock(
    vosk_url: str, tmp_path: Path
) -> None:
    audio = telephone_audio(tmp_path)
    seconds = len(audio) / 16000
    recognizer = VoskServerRecognizer(vosk_url, grammar=KOREAN_DIGITS)
    try:
        first = transcribe(recognizer, audio)
        second = transcribe(recognizer, audio)
    finally:
        recognizer.close()
    assert first and second
    assert all(w.end <= seconds + 0.1 for r in first for w in r.words)
    assert all(w.start >= seconds - 0.1 for r in second for w in r.words)

"""The Media Streams endpoint over a real WebSocket, with a fake recognizer speaking Russian."""

from __future__ import annotations

import json
import math
import threading
import time
import wave
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import websocket
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from ivr.streams import FACTORY_KEY, stream_token
from ivr.streams.client import stream_wav, twilio_messages
from speech.audio import write_wav
from speech.numbers import parse_number
from speech.recognizer import FakeRecognizer
from storage.models import Call, Utterance

SID = "CA" + "1" * 32


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    # A URL enables the endpoint without loading a model; the tests swap in a fake recognizer.
    return {**app_config, "METERLINE_VOSK_URL": "ws://127.0.0.1:9"}


@pytest.fixture
def fakes(app: Flask) -> list[FakeRecognizer]:
    """The fake recognizers the endpoint created, one per accepted stream."""
    made: list[FakeRecognizer] = []

    def factory() -> FakeRecognizer:
        fake = FakeRecognizer(["сто двадцать три и пять десятых"], utterance_seconds=0.5)
        made.append(fake)
        return fake

    app.extensions["meterline"].cache[FACTORY_KEY] = factory
    return made


@pytest.fixture
def ws_url(app: Flask, fakes: list[FakeRecognizer]) -> Iterator[str]:
    """The endpoint served by a real threaded server on a loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.server_port}/voice/stream"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def call(app: Flask) -> Call:
    with app.extensions["meterline"].sessions() as db:
        row = Call(call_sid=SID, caller="+78172000000", seq=3)
        db.add(row)
        db.commit()
        return row


def tone_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    samples = array(
        "h",
        (int(6000 * math.sin(i * 2 * math.pi * 440 / rate)) for i in range(int(seconds * rate))),
    )
    write_wav(path, samples.tobytes(), rate)
    return path


def utterances(app: Flask) -> list[Utterance]:
    """What was heard (step -1 only marks that the stream connected)."""
    query = select(Utterance).where(Utterance.seq >= 0).order_by(Utterance.id)
    with app.extensions["meterline"].sessions() as db:
        return list(db.scalars(query))


def test_an_utterance_is_stored_under_the_calls_current_step(
    app: Flask, ws_url: str, call: Call, tmp_path: Path
) -> None:
    frames = stream_wav(
        ws_url, SID, stream_token("test-secret-key", SID), tone_wav(tmp_path / "a.wav")
    )
    assert frames == 100  # 1 s of speech + 1 s of silence, 20 ms each
    [row] = utterances(app)
    assert (row.call_sid, row.seq) == (SID, 3)
    assert parse_number(row.text) == 123.5
    assert row.confidence == pytest.approx(0.9)
    assert [w["word"] for w in json.loads(row.words)][:3] == ["сто", "двадцать", "три"]
    assert row.audio_file == f"{SID}/1.wav"
    with wave.open(str(Path(app_config_audio(app)) / row.audio_file)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 0


def app_config_audio(app: Flask) -> Path:
    return Path(app.extensions["meterline"].settings.audio_dir)


def test_the_recognizer_hears_telephone_audio_at_its_own_rate(
    ws_url: str, call: Call, fakes: list[FakeRecognizer], tmp_path: Path
) -> None:
    stream_wav(
        ws_url, SID, stream_token("test-secret-key", SID), tone_wav(tmp_path / "a.wav", rate=44100)
    )
    [fake] = fakes
    assert fake.fed == pytest.approx(2 * 16000 * 2, rel=0.01)  # 2 s at 16 kHz, 16-bit
    assert fake.closed


def test_what_is_said_before_stop_is_stored_at_stop(
    app: Flask, ws_url: str, call: Call, tmp_path: Path
) -> None:
    app.extensions["meterline"].cache[FACTORY_KEY] = lambda: FakeRecognizer(
        ["да"], utterance_seconds=60
    )
    stream_wav(ws_url, SID, stream_token("test-secret-key", SID), tone_wav(tmp_path / "a.wav"))
    assert [(u.text, u.seq) for u in utterances(app)] == [("да", 3)]


def test_a_second_stream_of_the_call_keeps_the_first_recording(
    app: Flask, ws_url: str, call: Call, tmp_path: Path
) -> None:
    token = stream_token("test-secret-key", SID)
    wav = tone_wav(tmp_path / "a.wav")
    stream_wav(ws_url, SID, token, wav)
    with app.extensions["meterline"].sessions() as db:
        db.get_one(Call, call.id).seq = 4
        db.commit()
    stream_wav(ws_url, SID, token, wav)
    rows = utterances(app)
    assert [(u.seq, u.audio_file) for u in rows] == [(3, f"{SID}/1.wav"), (4, f"{SID}/2.wav")]


def test_simultaneous_calls_each_get_their_own_recognizer(
    app: Flask, ws_url: str, fakes: list[FakeRecognizer], tmp_path: Path
) -> None:
    sids = [f"CA{n:032d}" for n in range(4)]
    with app.extensions["meterline"].sessions() as db:
        db.add_all(Call(call_sid=sid, seq=n) for n, sid in enumerate(sids))
        db.commit()
    wav = tone_wav(tmp_path / "a.wav")
    threads = [
        threading.Thread(
            target=stream_wav, args=(ws_url, sid, stream_token("test-secret-key", sid), wav)
        )
        for sid in sids
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(fakes) == 4
    assert sorted((u.call_sid, u.seq) for u in utterances(app)) == [
        (sid, n) for n, sid in enumerate(sids)
    ]


def test_an_utterance_of_an_unknown_call_is_kept_under_step_0(
    app: Flask, ws_url: str, tmp_path: Path
) -> None:
    stream_wav(ws_url, SID, stream_token("test-secret-key", SID), tone_wav(tmp_path / "a.wav"))
    assert [(u.call_sid, u.seq) for u in utterances(app)] == [(SID, 0)]


def send_raw(ws_url: str, messages: list[dict[str, object]]) -> int | None:
    """Send messages; the close code the server answered with (None if it kept listening)."""
    ws = websocket.create_connection(ws_url, timeout=60)
    try:
        for message in messages:
            ws.send(json.dumps(message))
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big")
        return None
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        return 1006
    finally:
        ws.close()
        ws.shutdown()  # close() skips the socket when the server closed first


@pytest.mark.parametrize(
    "token",
    [
        "",
        "0" * 64,
        stream_token("another-secret", SID),
        stream_token("test-secret-key", "CA" + "2" * 32),
    ],
)
def test_a_stream_with_a_wrong_token_is_closed_unheard(
    app: Flask, ws_url: str, call: Call, fakes: list[FakeRecognizer], token: str
) -> None:
    messages = twilio_messages(SID, token, b"\x00" * 16000)
    assert send_raw(ws_url, messages) == 1008
    assert fakes == []
    assert utterances(app) == []


def test_a_stream_without_parameters_is_closed(ws_url: str, fakes: list[FakeRecognizer]) -> None:
    start = twilio_messages(SID, "x", b"")[1]
    del start["start"]["customParameters"]  # type: ignore[attr-defined]
    assert send_raw(ws_url, [start]) == 1008
    assert fakes == []


def test_media_before_start_is_refused(ws_url: str, fakes: list[FakeRecognizer]) -> None:
    media = twilio_messages(SID, "x", b"\x00" * 160)[2]
    assert send_raw(ws_url, [{"event": "connected"}, media]) == 1008
    assert fakes == []


def test_junk_is_refused(ws_url: str) -> None:
    ws = websocket.create_connection(ws_url, timeout=60)
    try:
        ws.send("not json")
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1008
    finally:
        ws.close()
        ws.shutdown()  # close() skips the socket when the server closed first


def test_there_is_no_stream_endpoint_without_a_recognizer(app_config: dict[str, str]) -> None:
    from ivr import create_app

    config = {k: v for k, v in app_config.items() if k != "METERLINE_VOSK_URL"}
    bare = create_app(config)
    try:
        assert "/voice/stream" not in {rule.rule for rule in bare.url_map.iter_rules()}
    finally:
        bare.extensions["meterline"].engine.dispose()


def test_tokens_are_bound_to_the_call_and_the_key() -> None:
    token = stream_token("k", SID)
    assert len(token) == 64 and token == stream_token("k", SID)
    assert token != stream_token("k", "CA" + "2" * 32)
    assert token != stream_token("k2", SID)


def test_the_client_sends_what_twilio_sends() -> None:
    messages = twilio_messages(SID, "tok", b"\x00" * 400, silence_seconds=1.0)
    events = [m["event"] for m in messages]
    assert events[:2] == ["connected", "start"] and events[-1] == "stop"
    media = [m["media"] for m in messages if m["event"] == "media"]
    assert len(media) == 3 + 50  # 400 bytes padded to 3 frames, then 1 s of silence
    assert [m["timestamp"] for m in media[:3]] == ["0", "20", "40"]
    assert [m["chunk"] for m in media[:2]] == ["1", "2"]
    assert messages[1]["start"]["customParameters"] == {"token": "tok"}  # type: ignore[index]
    assert messages[1]["start"]["mediaFormat"]["encoding"] == "audio/x-mulaw"  # type: ignore[index]
    seq = [int(m["sequenceNumber"]) for m in messages[1:]]
    assert seq == list(range(1, len(messages)))


def test_the_recognizer_is_prepared_when_the_first_request_comes(app: Flask) -> None:
    cache = app.extensions["meterline"].cache
    assert FACTORY_KEY not in cache
    app.test_client().get("/voice/stream-warm-up-probe")
    deadline = time.monotonic() + 60  # a thread: slow when the machine is busy
    while FACTORY_KEY not in cache and time.monotonic() < deadline:
        time.sleep(0.05)
    assert callable(cache[FACTORY_KEY])


def test_a_stream_whose_recognizer_cannot_start_is_closed_and_leaves_no_mark(
    app: Flask, ws_url: str, call: Call
) -> None:
    def broken() -> FakeRecognizer:
        raise ConnectionRefusedError("vosk-server pool unreachable")

    app.extensions["meterline"].cache[FACTORY_KEY] = broken
    messages = twilio_messages(SID, stream_token("test-secret-key", SID), b"\x00" * 1600)
    assert send_raw(ws_url, messages) == 1011
    with app.extensions["meterline"].sessions() as db:
        assert db.scalars(select(Utterance)).all() == []


def test_an_oversized_message_is_refused(ws_url: str, fakes: list[FakeRecognizer]) -> None:
    ws = websocket.create_connection(ws_url, timeout=60)
    try:
        ws.send(json.dumps({"event": "connected", "padding": "x" * 100_000}))
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1009  # message too big
    finally:
        ws.close()
        ws.shutdown()
    assert fakes == []


class BreakingRecognizer(FakeRecognizer):
    """Fails mid-call, as a vosk-server host that went away."""

    def accept(self, pcm: bytes) -> None:
        raise ConnectionResetError("recognizer host went away")


def test_a_recognizer_failing_mid_call_closes_the_stream_cleanly(
    app: Flask, ws_url: str, call: Call
) -> None:
    made: list[BreakingRecognizer] = []

    def factory() -> BreakingRecognizer:
        made.append(BreakingRecognizer([]))
        return made[-1]

    app.extensions["meterline"].cache[FACTORY_KEY] = factory
    messages = twilio_messages(SID, stream_token("test-secret-key", SID), b"\x00" * 8000)
    assert send_raw(ws_url, messages) == 1011
    assert made and made[0].closed


def test_when_the_sender_goes_quiet_the_pending_utterance_is_stored_at_once(
    app: Flask, ws_url: str, call: Call
) -> None:
    # The simulator (and trunks that suppress silence) stop sending between answers, so
    # Vosk's endpointer would wait for sound that never comes; a pause ends the utterance.
    app.extensions["meterline"].cache[FACTORY_KEY] = lambda: FakeRecognizer(
        ["сто двадцать три", "да"], utterance_seconds=60
    )
    token = stream_token("test-secret-key", SID)
    first = twilio_messages(SID, token, b"\x00" * 8000, silence_seconds=0)
    second = twilio_messages(SID, token, b"\x00" * 8000, silence_seconds=0)
    ws = websocket.create_connection(ws_url, timeout=60)
    try:
        for message in first[:-1]:  # connected, start, half a second of audio; no stop
            ws.send(json.dumps(message))
        assert wait_for(lambda: [u.text for u in utterances(app)] == ["сто двадцать три"])
        with app.extensions["meterline"].sessions() as db:
            db.get_one(Call, call.id).seq = 4
            db.commit()
        for message in second[2:-1]:
            ws.send(json.dumps(message))
        assert wait_for(lambda: len(utterances(app)) == 2)
    finally:
        ws.close()
        ws.shutdown()
    assert [(u.seq, u.text) for u in utterances(app)] == [(3, "сто двадцать три"), (4, "да")]


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True

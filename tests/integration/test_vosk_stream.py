"""Real audio over a real WebSocket to a real server process running the real Korean model.

Korean accuracy is not the point: the plumbing is. μ-law frames as Twilio sends them reach
gunicorn's threads, several calls share one model, and each utterance becomes a row and a WAV.
"""

from __future__ import annotations

import json
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ivr.streams import stream_token
from ivr.streams.client import stream_wav
from storage.models import Call, Utterance
from tests.integration.vosk_audio import korean_model, speech_wav
from tests.support.server import Server, running_server

SECRET = "e2e-secret"  # what tests.support.server gives the server


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def server(database_url: str, audio_dir: Path) -> Iterator[Server]:
    extra = {"METERLINE_VOSK_MODEL": str(korean_model()), "METERLINE_AUDIO_DIR": str(audio_dir)}
    with running_server(database_url, extra=extra, workers=1) as running:
        yield running


def ws_url(server: Server) -> str:
    return server.env["METERLINE_STREAM_URL"]


def add_calls(engine: Engine, sids: list[str]) -> None:
    with Session(engine) as db:
        db.add_all(Call(call_sid=sid, caller="+78172000000", seq=5) for sid in sids)
        db.commit()


def test_simultaneous_calls_are_recognized_and_stored_with_their_audio(
    server: Server, clean_db: Engine, audio_dir: Path, tmp_path: Path
) -> None:
    sids = [f"CA{n:032x}" for n in range(1, 5)]
    add_calls(clean_db, sids)
    wav = speech_wav(tmp_path / "ko.wav")
    errors: list[Exception] = []

    def call(sid: str) -> None:
        try:
            stream_wav(ws_url(server), sid, stream_token(SECRET, sid), wav, realtime=True)
        except Exception as exc:  # a thread cannot fail the test: reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(sid,)) for sid in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    heard = select(Utterance).where(Utterance.seq >= 0).order_by(Utterance.call_sid)
    with Session(clean_db) as db:
        rows = list(db.scalars(heard))
    assert sorted({u.call_sid for u in rows}) == sids  # every call heard something
    for row in rows:
        assert row.seq == 5 and row.text
        assert 0.0 <= row.confidence <= 1.0
        words = json.loads(row.words)
        assert [w["word"] for w in words] == row.text.split()
        assert row.audio_file and row.audio_file.startswith(row.call_sid + "/")
        with wave.open(str(audio_dir / row.audio_file)) as w:
            assert w.getframerate() == 8000 and w.getnframes() > 1600


def test_a_stream_with_a_forged_token_stores_nothing(
    server: Server, clean_db: Engine, tmp_path: Path
) -> None:
    sid = "CA" + "f" * 32
    add_calls(clean_db, [sid])
    stream_wav(
        ws_url(server), sid, stream_token("not-the-secret", sid), speech_wav(tmp_path / "a.wav")
    )
    with Session(clean_db) as db:
        assert db.scalars(select(Utterance)).all() == []

"""Speech in the call: where to stream audio, and how a recognized utterance becomes an event.

The media-stream endpoint stores what it hears as `Utterance` rows under the call's step
number; when that step's Gather ends with no keys, the webhook reads the step's last
utterance and hands the flow a `Spoken` event. A row with step -1 marks that the call's
stream connected at all: without it the flow never invites speech.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callflows.model import Event, Spoken
from ivr.config import Settings
from ivr.voice.twiml import StreamTarget
from speech.numbers import parse_answer, parse_number
from storage.models import Utterance

SpeechHook = Callable[[Session, str, int, datetime], Event | None]
StreamHook = Callable[[str], StreamTarget | None]
ConnectedHook = Callable[[str], bool]

CONNECTED_SEQ = -1
# The recognizer finalises an utterance about half a second after the caller stops;
# a Gather times out seconds later, so a short wait covers a slow recognizer host.
WAIT_FOR_UTTERANCE = 1.0


def mark_stream_started(sessions: sessionmaker[Session], call_sid: str) -> None:
    """Record that this call's audio reaches us (the stream sent its `start`)."""
    with sessions() as session:
        session.add(Utterance(call_sid=call_sid, seq=CONNECTED_SEQ, text=""))
        session.commit()


def voice_hooks(
    settings: Settings, sessions: sessionmaker[Session]
) -> tuple[SpeechHook | None, StreamHook | None, ConnectedHook | None]:
    """(speech, stream, connected) hooks for the VoiceService; all None without a recognizer."""
    if not (settings.vosk_model or settings.vosk_url):
        return None, None, None
    from ivr.streams import stream_token

    def stream(call_sid: str) -> StreamTarget:
        return StreamTarget(settings.stream_url, stream_token(settings.secret_key, call_sid))

    def connected(call_sid: str) -> bool:
        with sessions() as session:
            found = session.scalar(
                select(Utterance.id).where(
                    Utterance.call_sid == call_sid, Utterance.seq == CONNECTED_SEQ
                )
            )
            return found is not None

    def speech(_session: Session, call_sid: str, seq: int, now: datetime) -> Event | None:
        if not connected(call_sid):
            return None
        row = _wait_for_utterance(sessions, call_sid, seq)
        return None if row is None else spoken_event(row, now)

    return speech, stream, connected


def _wait_for_utterance(
    sessions: sessionmaker[Session], call_sid: str, seq: int
) -> Utterance | None:
    deadline = time.monotonic() + WAIT_FOR_UTTERANCE
    while True:
        # A fresh session each time: SQLite keeps a read snapshot for a transaction's life.
        with sessions() as session:
            row = session.scalars(
                select(Utterance)
                .where(Utterance.call_sid == call_sid, Utterance.seq == seq, Utterance.text != "")
                .order_by(Utterance.id.desc())
                .limit(1)
            ).first()
        if row is not None or time.monotonic() >= deadline:
            return row
        time.sleep(0.1)


def spoken_event(row: Utterance, now: datetime) -> Spoken:
    """The flow's view of an utterance: its words, what number or answer they make."""
    return Spoken(
        transcript=row.text,
        confidence=float(row.confidence),
        now=now,
        value=parse_number(row.text),
        answer=parse_answer(row.text),
        audio=row.audio_file,
    )

"""Speech in the call: where to stream audio, and how a recognized utterance becomes an event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from callflows.model import Event
from ivr.voice.twiml import StreamTarget

SpeechHook = Callable[[Session, str, int, datetime], Event | None]
StreamHook = Callable[[str], StreamTarget | None]


def voice_hooks() -> tuple[SpeechHook | None, StreamHook | None]:
    """(speech hook, stream hook) for the VoiceService; (None, None) without a recognizer."""
    return None, None

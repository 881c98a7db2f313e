"""Where recognized utterances go: an `Utterance` row per utterance and its audio as a WAV file."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from speech.audio import write_wav
from speech.recognizer import Result
from storage.models import Call, Utterance

log = logging.getLogger("meterline.streams")
SAFE_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
PURGE_EVERY_SECONDS = 3600

_purge_lock = threading.Lock()
_last_purge: dict[Path, float] = {}


def save_utterance(
    sessions: sessionmaker[Session],
    audio_dir: Path,
    call_sid: str,
    result: Result,
    pcm: bytes,
    rate: int,
) -> Utterance:
    """Store what was heard under the call's current step (`calls.seq`), audio alongside."""
    audio_file = _save_audio(audio_dir, call_sid, pcm, rate) if pcm else None
    with sessions() as db:
        seq = db.scalar(select(Call.seq).where(Call.call_sid == call_sid))
        if seq is None:
            log.warning("utterance for unknown call %s: stored under step 0", call_sid)
        row = Utterance(
            call_sid=call_sid,
            seq=seq or 0,
            text=result.text,
            confidence=result.confidence,
            words=json.dumps(result.words_json(), ensure_ascii=False),
            audio_file=audio_file,
        )
        db.add(row)
        db.commit()
        return row


def _save_audio(audio_dir: Path, call_sid: str, pcm: bytes, rate: int) -> str | None:
    """Write the utterance as <audio_dir>/<CallSid>/<n>.wav; the path relative to audio_dir."""
    if not SAFE_SID.fullmatch(call_sid):
        return None
    folder = audio_dir / call_sid
    try:
        folder.mkdir(parents=True, exist_ok=True)
        n = 1 + max((int(p.stem) for p in folder.glob("*.wav") if p.stem.isdigit()), default=0)
        while True:
            path = folder / f"{n}.wav"
            try:
                # "x": a second stream of the same call (a reconnect) never overwrites.
                with path.open("xb") as fh:
                    write_wav(fh, pcm, rate)
                break
            except FileExistsError:
                n += 1
    except OSError:
        log.exception("could not save utterance audio under %s", folder)
        return None
    return f"{call_sid}/{n}.wav"


def purge_old_audio(audio_dir: Path, days: int, now: float | None = None) -> int:
    """Delete utterance WAVs older than `days` (and emptied call folders); how many went."""
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = 0
    if not audio_dir.is_dir():
        return 0
    for wav in audio_dir.glob("*/*.wav"):
        try:
            if wav.stat().st_mtime < cutoff:
                wav.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another worker purged it first
    for folder in audio_dir.iterdir():
        if folder.is_dir() and not any(folder.iterdir()):
            try:
                folder.rmdir()
            except OSError:
                pass  # a stream just wrote into it
    if removed:
        log.info("purged %d utterance recordings older than %d days", removed, days)
    return removed


def maybe_purge(audio_dir: Path, days: int) -> None:
    """Purge at most once an hour per process; called as streams start."""
    now = time.monotonic()
    with _purge_lock:
        last = _last_purge.get(audio_dir)
        if last is not None and now - last < PURGE_EVERY_SECONDS:
            return
        _last_purge[audio_dir] = now
    try:
        purge_old_audio(audio_dir, days)
    except OSError:
        log.exception("could not purge old recordings in %s", audio_dir)

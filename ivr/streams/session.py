"""One Twilio Media Streams connection: check its token, recognize its audio, store utterances.

Twilio sends JSON text messages: `connected`, `start` (callSid, customParameters), `media`
(base64 μ-law, 8 kHz, 20 ms each), `stop`; `mark` and `dtmf` may come too and are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ivr.streams.store import SAFE_SID, save_utterance
from ivr.voice.speech import mark_stream_started
from speech.audio import Resampler, ulaw_decode
from speech.recognizer import Recognizer, RecognizerFactory, Result

log = logging.getLogger("meterline.streams")

TELEPHONE_RATE = 8000
BATCH_BYTES = TELEPHONE_RATE * 2 // 10  # feed the recognizer 100 ms at a time, not 20 ms
MAX_AUDIO_BYTES = TELEPHONE_RATE * 2 * 30  # an utterance's WAV keeps at most its last 30 s
LEAD_IN_SECONDS = 0.3  # audio kept before the first recognized word


def stream_token(secret_key: str, call_sid: str) -> str:
    """The token a call's `<Stream>` must carry: HMAC-SHA256(secret key, CallSid), hex."""
    return hmac.new(secret_key.encode(), call_sid.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StreamConfig:
    """What a stream needs from the app."""

    secret_key: str
    audio_dir: Path
    sessions: sessionmaker[Session]
    factory: RecognizerFactory
    # Called with (CallSid, step) once a final result is stored for the call's current step.
    on_final: Callable[[str, int], object] | None = None
    # Asked once the token is good, before a recognizer is made: False refuses the stream
    # (too many for the call or the process, see gate.py); `leave` is called when it ends.
    admit: Callable[[str], bool] = lambda _sid: True
    leave: Callable[[str], None] = field(default=lambda _sid: None)


class CallStream:
    """The recognition of one call's inbound audio; feed it Twilio's messages in order."""

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.call_sid: str | None = None
        self.refused = False  # the stream broke the rules (bad token, junk)
        self.failed = False  # our side could not recognize
        self.utterances = 0
        self._recognizer: Recognizer | None = None
        self._resampler: Resampler | None = None
        self._batch = bytearray()  # telephone PCM not yet given to the recognizer
        self._audio = bytearray()  # telephone PCM since the last utterance, for its WAV
        self._audio_start = 0  # stream position (in samples) of _audio[0]
        self._fed = 0  # samples given to the recognizer so far
        self.pending = False  # audio fed since the last utterance ended
        self.admitted = False  # counted by the gate: `finish` lets it go
        self._before_start = 0  # messages received before an accepted start

    @property
    def started(self) -> bool:
        """Whether a start with a good token was accepted (and a recognizer is listening)."""
        return self._recognizer is not None

    def handle(self, raw: str | bytes) -> bool:
        """Process one message; False when the stream should be closed."""
        try:
            message = json.loads(raw)
        except ValueError:
            return self._refuse("a message that is not JSON")
        if not isinstance(message, dict):
            return self._refuse("a message that is not a JSON object")
        event = message.get("event")
        if self._recognizer is None:
            # Twilio sends `connected`, then `start` with the token: nothing else, nothing
            # more, comes first.
            self._before_start += 1
            if event == "connected" and self._before_start == 1:
                return True
            if event == "start":
                return self._start(message.get("start"))
            return self._refuse(f"{event!r} before an accepted start")
        if event == "start":
            return self._refuse("a second start")
        if event == "media":
            return self._media(message.get("media"))
        if event == "stop":
            self.finish()
            return False
        return True

    def _refuse(self, why: str) -> bool:
        log.warning("media stream refused (call %s): %s", self.call_sid or "?", why)
        self.refused = True
        return False

    def _start(self, start: Any) -> bool:
        if self._recognizer is not None or not isinstance(start, dict):
            return self._refuse("a second or malformed start")
        sid = start.get("callSid")
        params = start.get("customParameters")
        token = params.get("token") if isinstance(params, dict) else None
        if not isinstance(sid, str) or not SAFE_SID.fullmatch(sid):
            return self._refuse("no valid callSid")
        self.call_sid = sid
        expected = stream_token(self.config.secret_key, sid)
        if not isinstance(token, str) or not hmac.compare_digest(token, expected):
            return self._refuse("missing or wrong token")
        if not self.config.admit(sid):
            return self._refuse("too many streams for the call or the server")
        self.admitted = True
        try:
            self._recognizer = self.config.factory()
        except Exception:
            # The model failed to load or the vosk-server pool is unreachable: without the
            # stream's mark the flow never invites speech, and the call goes on by keypad.
            log.exception("call %s: no recognizer for the stream", sid)
            self.failed = True
            return False
        self._resampler = Resampler(TELEPHONE_RATE, self._recognizer.sample_rate)
        log.info("media stream started for call %s", sid)
        # Tells the webhooks this call's audio reaches us, so prompts may invite speech.
        mark_stream_started(self.config.sessions, sid)
        return True

    def _media(self, media: Any) -> bool:
        if not isinstance(media, dict) or media.get("track", "inbound") != "inbound":
            return True
        try:
            payload = base64.b64decode(media.get("payload") or "", validate=True)
        except (binascii.Error, TypeError):
            log.warning("call %s: undecodable media payload skipped", self.call_sid)
            return True
        pcm = ulaw_decode(payload)
        self._batch += pcm
        self._audio += pcm
        if len(self._batch) < BATCH_BYTES:
            return True
        try:
            self._feed()
        except Exception:
            # A vosk-server host went away mid-call, say: stop listening, the keypad still works.
            log.exception("call %s: the recognizer failed; stream closed", self.call_sid)
            self.failed = True
            self._drop_recognizer()
            return False
        return True

    def _drop_recognizer(self) -> None:
        recognizer, self._recognizer = self._recognizer, None
        if recognizer is not None:
            try:
                recognizer.close()
            except Exception:
                log.exception("call %s: the recognizer did not close cleanly", self.call_sid)

    def _feed(self) -> None:
        assert self._recognizer is not None and self._resampler is not None
        pcm = bytes(self._batch)
        self._batch.clear()
        self._fed += len(pcm) // 2
        result = self._recognizer.accept(self._resampler.feed(pcm))
        self.pending = result is None
        if result is not None:
            self._store(result)
        elif len(self._audio) > MAX_AUDIO_BYTES:
            cut = len(self._audio) - MAX_AUDIO_BYTES
            del self._audio[:cut]
            self._audio_start += cut // 2

    def _store(self, result: Result) -> None:
        assert self.call_sid is not None
        start = self._audio_start
        if result.words:
            start = max(start, int((result.words[0].start - LEAD_IN_SECONDS) * TELEPHONE_RATE))
        clip = bytes(self._audio[(start - self._audio_start) * 2 :])
        self._audio.clear()
        self._audio_start = self._fed
        self.utterances += 1
        try:
            row = save_utterance(
                self.config.sessions,
                self.config.audio_dir,
                self.call_sid,
                result,
                clip,
                TELEPHONE_RATE,
            )
        except Exception:
            # The keypad still works: a lost transcript must not end the call's audio stream.
            log.exception("call %s: could not store an utterance", self.call_sid)
            return
        if self.config.on_final is not None:
            try:
                self.config.on_final(self.call_sid, row.seq)
            except Exception:
                # The Gather's timeout still brings the answer in, only later.
                log.exception("call %s: the spoken-answer hook failed", self.call_sid)

    def flush(self) -> bool:
        """The caller's audio paused (no frames for a while): end the pending utterance now.

        Twilio sends frames all through a call, silence included, so Vosk's own endpointer
        ends utterances. Senders that go quiet instead (the call simulator, trunks that
        suppress silence) would leave the last words unheard until the next sound; False
        when the recognizer failed and the stream should close.
        """
        recognizer = self._recognizer
        if recognizer is None or not (self.pending or self._batch):
            return True
        try:
            if self._batch:
                self._feed()
            if self.pending:
                self.pending = False
                tail = recognizer.final()
                if tail.text:
                    self._store(tail)
        except Exception:
            log.exception("call %s: the recognizer failed; stream closed", self.call_sid)
            self.failed = True
            self._drop_recognizer()
            return False
        return True

    def finish(self) -> None:
        """The stream ended: recognize what is pending, store it, release the recognizer."""
        if self.admitted and self.call_sid is not None:
            self.admitted = False
            self.config.leave(self.call_sid)
        recognizer = self._recognizer
        if recognizer is None:
            return
        try:
            if self._batch:
                self._feed()
            tail = recognizer.final()
            if tail.text:
                self._store(tail)
        except Exception:
            log.exception("call %s: recognizer failed at the end of the stream", self.call_sid)
        finally:
            self._drop_recognizer()

"""Twilio Media Streams: the call's audio over a WebSocket, recognized as the caller speaks.

The voice webhook renders `<Start><Stream url=".../voice/stream">` with a `token` parameter
from `stream_token`; each utterance heard becomes an `Utterance` row keyed by the call's
CallSid and its current step (`calls.seq`), which the webhook reads when the Gather ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask
from flask_sock import Sock
from simple_websocket import Server

from ivr.config import Settings
from ivr.services import Services, services
from ivr.streams.gate import StreamGate
from ivr.streams.session import CallStream, StreamConfig, stream_token
from ivr.streams.store import maybe_purge, purge_old_audio
from ivr.voice.redirect import SpokenAnswers, redirector_from
from speech.recognizer import RecognizerFactory, recognizer_factory
from speech.vocabulary import GRAMMAR_WORDS

__all__ = [
    "FACTORY_KEY",
    "STREAM_PATH",
    "purge_old_audio",
    "recognizer_for",
    "register",
    "speech_enabled",
    "stream_token",
    "warm_up",
]

log = logging.getLogger("meterline.streams")
STREAM_PATH = "/voice/stream"
FACTORY_KEY = "speech.recognizer_factory"
WARM_UP_KEY = "speech.warm_up_started"
ANSWERS_KEY = "speech.spoken_answers"
GATE_KEY = "speech.stream_gate"
# A socket gets this long, from the moment it opens, to send `start` with a good token; the
# deadline is not moved by other messages (a socket sending `connected` forever is refused).
START_TIMEOUT = 5.0
# Twilio sends audio every 20 ms, silence included; the call simulator sends only speech, and
# a person typing into `meterline call` may take a while between answers.
IDLE_TIMEOUT = 120.0
PAUSE_SECONDS = 0.5  # no frames this long while words may be pending: end the utterance
_factory_lock = threading.Lock()
_warm_up_lock = threading.Lock()
_gate_lock = threading.Lock()


def speech_enabled(settings: Settings) -> bool:
    """Whether a recognizer is configured (a model directory or a vosk-server URL)."""
    return bool(settings.vosk_model or settings.vosk_url)


def recognizer_for(svc: Services) -> RecognizerFactory:
    """The process's recognizer factory, built once (loads the model, checks its vocabulary)."""
    with _factory_lock:
        factory: RecognizerFactory | None = svc.cache.get(FACTORY_KEY)
        if factory is None:
            settings = svc.settings
            factory = recognizer_factory(settings.vosk_model, settings.vosk_url, GRAMMAR_WORDS)
            if factory is None:
                raise RuntimeError("no recognizer configured")
            svc.cache[FACTORY_KEY] = factory
        return factory


def register(app: Flask) -> None:
    """Attach the media-stream WebSocket endpoint, only when a recognizer is configured."""
    settings: Settings = app.config["METERLINE_SETTINGS"]
    if not speech_enabled(settings):
        return
    _warm_up_on_first_request(app)
    if settings.stream_port:
        return  # `meterline serve` runs the stream server (server.py): no thread per call
    # Twilio's messages are well under 1 KB; anything far larger is not Twilio.
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": 64 * 1024})
    Sock(app).route(STREAM_PATH)(media_stream)


def _warm_up_on_first_request(app: Flask) -> None:
    """Load the model and check its vocabulary when the app serves its first request.

    Not in `create_app`: every CLI command builds the app and should not pay 1–2 s and
    half a gigabyte for a model it will not use. Servers start it earlier (`warm_up`).
    """

    @app.before_request
    def start_warm_up() -> None:
        warm_up(app)


def warm_up(app: Flask) -> None:
    """Start loading the recognizer in the background, once per process (no-op without one).

    `meterline serve` calls it as each worker starts: a model loaded on the first call's
    request is not ready when that call's audio arrives a second later, and the call would
    miss the invitation to speak.
    """
    svc: Services = app.extensions["meterline"]
    if svc.cache.get(WARM_UP_KEY) or not speech_enabled(svc.settings):
        return  # every request passes here: no lock on the way
    # Not _factory_lock: the model load holds that for seconds, and requests must not wait.
    with _warm_up_lock:
        if svc.cache.get(WARM_UP_KEY):
            return
        svc.cache[WARM_UP_KEY] = True

    def load() -> None:
        try:
            recognizer_for(svc)
        except Exception:
            log.exception("the speech recognizer could not be prepared; calls go by keypad")

    threading.Thread(target=load, name="speech-warm-up", daemon=True).start()


def spoken_answers(svc: Services) -> Callable[[str, int], object] | None:
    """The hook that moves a call on at a spoken answer; None without Twilio REST credentials."""
    if ANSWERS_KEY not in svc.cache:
        redirector = redirector_from(svc.settings)
        answers = SpokenAnswers(svc.settings, svc.sessions, redirector) if redirector else None
        svc.cache[ANSWERS_KEY] = answers
    answers = svc.cache[ANSWERS_KEY]
    return None if answers is None else answers.heard


def gate_for(svc: Services) -> StreamGate:
    """The process's stream gate (one for the app's route and the stream server alike)."""
    # Not _factory_lock: a model load holds that for seconds, and the stream server's event
    # loop asks for the gate as every socket opens.
    with _gate_lock:
        gate: StreamGate | None = svc.cache.get(GATE_KEY)
        if gate is None:
            limit = svc.settings.max_streams
            # Sockets not yet past their start deadline count too, a hundred more at most.
            gate = svc.cache[GATE_KEY] = StreamGate(limit, limit + 100)
        return gate


def stream_config(svc: Services) -> StreamConfig:
    """What a call's stream needs: token secret, storage, recognizer, the gate."""
    settings, gate = svc.settings, gate_for(svc)
    return StreamConfig(
        secret_key=settings.secret_key,
        audio_dir=settings.audio_dir,
        sessions=svc.sessions,
        factory=lambda: recognizer_for(svc)(),
        on_final=spoken_answers(svc),
        admit=gate.admit,
        leave=gate.leave,
    )


def media_stream(ws: Server) -> None:
    """One call's audio: messages in until `stop`, a refusal, or silence on the socket.

    Served by the app itself (the development server, tests); `meterline serve` runs the
    asyncio stream server instead (streams/server.py), so a call costs no web worker thread.
    """
    svc = services()
    settings = svc.settings
    gate = gate_for(svc)
    if not gate.open_socket():
        ws.close(reason=1013)  # try again later
        return
    maybe_purge(settings.audio_dir, settings.audio_keep_days)
    stream = CallStream(stream_config(svc))
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if stream.pending:
                message = ws.receive(timeout=PAUSE_SECONDS)
                if message is None:
                    if not stream.flush():
                        break
                    continue
            elif stream.started:
                message = ws.receive(timeout=IDLE_TIMEOUT)
            else:
                left = deadline - time.monotonic()
                message = ws.receive(timeout=left) if left > 0 else None
                if message is None:
                    stream.refused = True
            if message is None or not stream.handle(message):
                break
    finally:
        stream.finish()
        gate.close_socket()
    # 1008: policy violation (bad token, junk); 1011: our recognizer failed; 1000: normal end.
    ws.close(reason=1008 if stream.refused else 1011 if stream.failed else 1000)

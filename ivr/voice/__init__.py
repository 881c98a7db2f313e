"""Twilio voice webhooks: thin routes over the VoiceService."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from ivr.prompts import Catalogue
from ivr.request import current_request
from ivr.services import services
from ivr.voice.calls import BadRequest, VoiceService
from ivr.voice.signature import twilio_signed
from ivr.voice.speech import voice_hooks

log = logging.getLogger(__name__)
voice = Blueprint("voice", __name__, url_prefix="/voice")


def voice_service() -> VoiceService:
    """The process's VoiceService, built on first use."""
    svc = services()
    cached = svc.cache.get("voice")
    if cached is None:
        catalogue: Catalogue = svc.cache["catalogue"]  # loaded and checked by create_app
        speech_hook, stream_hook, connected_hook = voice_hooks(svc.settings, svc.sessions)
        cached = VoiceService(
            svc.settings,
            svc.sessions,
            catalogue,
            clock=lambda: svc.clock(),
            speech=speech_hook,
            stream=stream_hook,
            stream_connected=connected_hook,
            engine=svc.webhook_engine(),
        )
        svc.cache["voice"] = cached
    return cached


def step_url(seq: int) -> str:
    """The absolute URL of step `seq`, as Twilio will request (and sign) it."""
    return f"{services().settings.public_url}/voice/step?seq={seq}"


def _twiml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


def _answer(handler: Callable[[VoiceService], str]) -> Response:
    """Run a webhook; whatever goes wrong, the caller hears an apology, never a 5xx."""
    service = voice_service()
    req = current_request()
    sid = req.form.get("CallSid")
    try:
        return _twiml(handler(service))
    except BadRequest as exc:
        log.warning("webhook %s refused: %s", req.path, exc)
        return _twiml(service.fail(sid, f"bad webhook request: {exc}"))
    except Exception as exc:
        log.exception("webhook %s failed", req.path)
        return _twiml(service.fail(sid, f"internal error: {type(exc).__name__}: {exc}"))


@voice.errorhandler(RequestEntityTooLarge)
def too_large(_exc: RequestEntityTooLarge) -> Response:
    """A form larger than Flask reads (MAX_FORM_MEMORY_SIZE; Twilio's are a few kB): nothing
    could be verified, so nothing is stored; the caller hears the apology, never a 4xx."""
    log.warning("webhook %s refused: form too large", request.path)
    if request.path.endswith("/status"):
        answer = Response("", status=200)
    else:
        answer = _twiml(voice_service().renderer.apology())
    # The body was not read (ivr/guards.py): close, or the server reads the rest to reuse it.
    answer.headers["Connection"] = "close"
    return answer


@voice.post("/incoming")
@twilio_signed
def incoming() -> Response:
    """Twilio's "a call comes in"."""
    form = current_request().form
    return _answer(lambda service: service.incoming(form, step_url))


@voice.post("/step")
@twilio_signed
def step() -> Response:
    """The answer to a prompt: keys, speech or silence."""
    req = current_request()
    seq = req.args.get("seq", "")
    return _answer(lambda service: service.step(req.form, _seq(seq), step_url))


@voice.post("/dial")
@twilio_signed
def dial() -> Response:
    """How a transfer to an operator ended (Twilio's Dial action: DialCallStatus)."""
    seq = request.args.get("seq", "")
    if "DialCallStatus" not in request.form:
        return _answer(lambda _service: _refuse("a Dial result without DialCallStatus"))
    return _answer(lambda service: service.step(request.form, _seq(seq), step_url))


def _refuse(why: str) -> str:
    raise BadRequest(why)


def _seq(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 6:
        raise BadRequest(f"bad step number {raw[:20]!r}")
    return int(raw)


@voice.post("/status")
@twilio_signed
def status() -> Response:
    """Twilio's status callback: always 200."""
    try:
        voice_service().status(current_request().form)
    except Exception:
        log.exception("status callback failed")
    # The type Werkzeug would choose, named: left out, it looks for a Content-Type header
    # first, and a missing header costs it an exception.
    return Response("", status=200, mimetype="text/plain")

"""Twilio request validation against the configured public URL, never `request.url`.

Behind a proxy `request.url` has the wrong scheme, host or port (twilio-python 751, 392),
and trusting X-Forwarded-* headers from anyone lets them be spoofed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Request, abort, request
from twilio.request_validator import RequestValidator

from ivr.services import services

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def public_url_of(req: Request, public_base: str) -> str:
    """The URL Twilio signed: the public base URL plus this request's path and query."""
    query = req.query_string.decode("latin-1")
    return public_base + req.path + (f"?{query}" if query else "")


def is_valid(req: Request) -> bool:
    """Whether the request carries a good X-Twilio-Signature for our token and public URL."""
    settings = services().settings
    if settings.skip_signature_check:
        return True
    if not settings.twilio_auth_token:
        return False
    signature = req.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    params = req.form if req.method == "POST" else {}
    url = public_url_of(req, settings.public_url)
    return bool(RequestValidator(settings.twilio_auth_token).validate(url, params, signature))


def twilio_signed(view: F) -> F:
    """Refuse (403) any webhook request not signed by Twilio with our token."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_valid(request):
            log.warning("refused an unsigned or forged webhook request to %s", request.path)
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

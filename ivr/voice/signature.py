"""Twilio request validation against the configured public URL, never `request.url`.

Behind a proxy `request.url` has the wrong scheme, host or port (twilio-python 751, 392),
and trusting X-Forwarded-* headers from anyone lets them be spoofed.

The check gives the same answer as the SDK's `RequestValidator.validate` (a property test
holds them to it), at about a third of the cost: the SDK always computes two HMACs, one over
the URL with its port and one without (Twilio signs either), and compares character by
character; we compute the one over the URL as configured, and the other only on a mismatch.
"""

from __future__ import annotations

import base64
import functools
import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlparse

from flask import Request, abort
from twilio.request_validator import add_port, remove_port
from werkzeug.datastructures import MultiDict

from ivr.request import FORM_PAIRS, current_request
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
    url = public_url_of(req, settings.public_url)
    if req.method != "POST":
        return payload_matches(settings.twilio_auth_token, url, "", signature)
    form = req.form
    pairs = req.__dict__.get(FORM_PAIRS)  # as parsed (ivr.request), when it parsed the form
    payload = _signed_fields(form) if pairs is None else _signed_pairs(pairs)
    return payload_matches(settings.twilio_auth_token, url, payload, signature)


def signature_matches(token: str, url: str, params: Mapping[str, Any], signature: str) -> bool:
    """Whether `signature` is Twilio's HMAC-SHA1 of `url` and `params` (a form or a dict),
    with or without the URL's port: what `RequestValidator(token).validate` answers."""
    return payload_matches(token, url, _signed_fields(params), signature)


def payload_matches(token: str, url: str, payload: str, signature: str) -> bool:
    """`signature_matches` for the form's fields already joined (`_signed_fields`)."""
    given = signature.encode("utf-8", "surrogatepass")
    key = token.encode()
    if _matches(key, _as_parsed(url) + payload, given):
        return True
    # Twilio signs the URL with or without its port, inconsistently (the SDK checks both).
    return _matches(key, _other_port(url) + payload, given)


# A webhook's URL is the public URL, its path and query: a few distinct ones per process.
@functools.lru_cache(maxsize=256)
def _as_parsed(url: str) -> str:
    return urlparse(url).geturl()


@functools.lru_cache(maxsize=256)
def _other_port(url: str) -> str:
    parsed = urlparse(url)
    return remove_port(parsed) if parsed.port else add_port(parsed)


def _signed_fields(params: Mapping[str, Any]) -> str:
    """Each field's name and value, sorted, distinct values once (as the SDK does: by name,
    then each name's distinct values, which is the order of the distinct (name, value) pairs)."""
    items = params.items(multi=True) if isinstance(params, MultiDict) else params.items()
    return _signed_pairs(items)


def _signed_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """The fields' (name, value) pairs as the SDK joins them: sorted, each distinct pair once
    (a MultiDict's `items(multi=True)` holds the same pairs as the list it was built from)."""
    return "".join([name + value for name, value in sorted(set(pairs))])


def _matches(key: bytes, data: str, given: bytes) -> bool:
    digest = hmac.digest(key, data.encode(), "sha1")
    return hmac.compare_digest(base64.b64encode(digest), given)


def twilio_signed(view: F) -> F:
    """Refuse (403) any webhook request not signed by Twilio with our token."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        req = current_request()
        if not is_valid(req):
            # The URL checked is what a misconfigured METERLINE_PUBLIC_URL gets wrong.
            settings = services().settings
            reason = (
                "no TWILIO_AUTH_TOKEN is set"
                if not settings.twilio_auth_token
                else "no X-Twilio-Signature header"
                if not req.headers.get("X-Twilio-Signature")
                else "the signature does not match"
            )
            log.warning(
                "refused an unsigned or forged webhook request to %s: %s; checked against %s "
                "(METERLINE_PUBLIC_URL must be the URL Twilio calls)",
                req.path, reason, public_url_of(req, settings.public_url),
            )  # fmt: skip
            abort(403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

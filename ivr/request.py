"""The app's request class (Werkzeug's, with a cheaper urlencoded form and query parser), and
its sessions (none for the webhooks).

Every webhook carries Twilio's ~28 urlencoded fields, and Werkzeug parses them with the
standard library's `parse_qsl`, which calls `unquote` (and `_coerce_args`) twice per field even
when there is nothing to unquote: about 30 µs per webhook, more than half of what bare Flask
spends answering one (issue 9). `parse_pairs` is `parse_qsl` as Werkzeug calls it,
hand-written to skip the calls a field without `+` or `%` does not need (about 17 µs); a
property test (tests/unit/test_request_parsing.py) holds it to `parse_qsl` on any text.
When the body guard (ivr/guards.py) has already read the body whole, the form is parsed from
those bytes, not through Werkzeug's stream, its limited stream and a parser built for the
request (about 12 µs); property tests hold that form to stock Werkzeug's as well. Everything
else (a multipart body, the ImmutableMultiDict the views see) is Werkzeug's, and the size
limits are Werkzeug's limits.
"""

from __future__ import annotations

import io
from typing import IO, Any
from urllib.parse import unquote, unquote_to_bytes

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" error handler)
from flask import Flask, Request, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.utils import cached_property

from ivr.guards import BODY

URLENCODED = "application/x-www-form-urlencoded"
# Where `MeterlineRequest` keeps the form's (name, value) pairs as parsed, in order: the
# signature check reads them without walking the MultiDict built from them.
FORM_PAIRS = "meterline_form_pairs"
# Werkzeug's error handler (registered by werkzeug.urls, imported by Werkzeug itself): bytes
# that are not UTF-8 stay percent-encoded, as Werkzeug leaves them.
_ERRORS = "werkzeug.url_quote"


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")`, exactly."""
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        # unquote() of a text without "%" is that text: only "+" needs replacing then.
        if "%" in name:
            name = _unquote(name.replace("+", " "))
        elif "+" in name:
            name = name.replace("+", " ")
        if "%" in value:
            value = _unquote(value.replace("+", " "))
        elif "+" in value:
            value = value.replace("+", " ")
        pairs.append((name, value))
    return pairs


def _unquote(text: str) -> str:
    """`unquote(text, "utf-8", _ERRORS)`. When the unquoted bytes are UTF-8 (Twilio's `%2B`
    and `%7B` nearly always are) in one pass, without `unquote`'s split of the text into
    ASCII runs and the join after; its own way otherwise. The two agree: a run's bytes that
    are not UTF-8 on their own are not inside the whole text's either (a character outside
    ASCII starts with a lead byte and ends complete)."""
    try:
        return unquote_to_bytes(text).decode()
    except UnicodeError:  # not UTF-8 once unquoted (or, from a caller, a lone surrogate)
        return unquote(text, "utf-8", _ERRORS)


def current_request() -> Request:
    """The request itself rather than Flask's proxy for it. Each attribute read through
    `flask.request` first fails on the proxy, which costs an AttributeError formatted and
    thrown away, then goes through the proxy's lookup: about 1 µs against 0.07 µs on the
    object, and the webhook path reads a dozen (issue 9)."""
    return request._get_current_object()  # type: ignore[attr-defined]


class FormParser(FormDataParser):
    """Werkzeug's form parser, urlencoded bodies by `parse_pairs`."""

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, Any]]:
        """As Werkzeug's `parse` (and its `_parse_urlencoded`) for an urlencoded body."""
        if mimetype != URLENCODED:
            return super().parse(stream, mimetype, content_length, options)
        limit = self.max_form_memory_size
        if limit is not None and content_length is not None and content_length > limit:
            raise RequestEntityTooLarge()
        try:
            items = parse_pairs(stream.read().decode())
        except ValueError:  # not UTF-8
            if not self.silent:
                raise
            return stream, self.cls(), self.cls()
        return stream, self.cls(items), self.cls()


class MeterlineRequest(Request):
    """Flask's request, forms and query strings by `parse_pairs`."""

    form_data_parser_class = FormParser

    def _load_form_data(self) -> None:
        """The urlencoded form from the body the body guard already read whole (ivr.guards,
        BODY): what Werkzeug's parsing gives, without the stream, the limited stream around
        it and a parser built per request to read bytes that are already in memory. Any
        other request (multipart, no body read, debug mode's helpers) goes Werkzeug's way."""
        if "form" in self.__dict__:
            return
        body = self.environ.get(BODY)
        debug = current_app._get_current_object().debug  # type: ignore[attr-defined]
        if not isinstance(body, bytes) or self.mimetype != URLENCODED or debug:
            super()._load_form_data()
            return
        for limit in (self.max_form_memory_size, self.max_content_length):
            if limit is not None and len(body) > limit:
                raise RequestEntityTooLarge()
        try:
            items = parse_pairs(body.decode())
        except ValueError:  # not UTF-8: an empty form, as Werkzeug's silent parser gives
            items = []
        storage = self.parameter_storage_class
        state = self.__dict__
        state["stream"], state["form"], state["files"] = io.BytesIO(), storage(items), storage()
        state[FORM_PAIRS] = items

    @cached_property
    def args(self) -> MultiDict[str, str]:
        """The query string's parameters, as Werkzeug's `args` gives them."""
        return self.parameter_storage_class(parse_pairs(self.query_string.decode()))


class Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but none for Twilio's webhooks (/voice/…).

    A webhook carries no cookie and is answered without one; opening a session for it still
    builds an itsdangerous serializer and parses the cookies, and closing it asks whether to
    set one: a few hundredths of a millisecond per webhook for nothing. The webhooks read a
    null session (empty; writing to it raises), and nothing is saved."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """A null session for a webhook; Flask's otherwise."""
        if request.path.startswith(WEBHOOKS):
            return self.make_null_session(app)
        return super().open_session(app, request)


# The webhooks' blueprint (ivr/voice): Twilio's requests, signed, never a browser's.
WEBHOOKS = "/voice/"

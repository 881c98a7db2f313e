"""Request guards in front of every route: a size limit and a deadline for reading the body.

Both act before a signature or CSRF token is checked, since checking either means parsing
the form: a forged 100 MB form must be refused unread, and a body sent a byte a second must
not hold a worker thread for minutes (gunicorn has no body-read timeout of its own).
"""

from __future__ import annotations

import heapq
import io
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, abort, request
from werkzeug.exceptions import RequestEntityTooLarge

# Twilio's webhook forms are a few KB and the operator's forms smaller; 64 KiB leaves room.
DEFAULT_MAX_BODY = 64 * 1024
# A few KB arrive in well under a second; Twilio itself gives up on a webhook after 15 s.
DEFAULT_BODY_TIMEOUT = 5.0

# The environ key under which the body read here is handed on (ivr.request reads the form
# from it instead of from a stream around a stream).
BODY = "meterline.body"
# Set by BodyDeadline on a request whose body is over the limit: refused in the app.
TOO_LARGE = "meterline.body_too_large"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def init_app(
    app: Flask,
    max_body: int = DEFAULT_MAX_BODY,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    turns: Callable[[WsgiApp], WsgiApp] | None = None,
) -> None:
    """Refuse bodies over `max_body` bytes unread, and bodies not in within `body_timeout`;
    `turns` (ivr.voice.gate) goes inside, so that a body still arriving holds no turn."""
    # Werkzeug enforces this too while the form is parsed (chunked bodies have no length).
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.config["MAX_FORM_MEMORY_SIZE"] = max_body
    inner: WsgiApp = app.wsgi_app if turns is None else turns(app.wsgi_app)
    app.wsgi_app = BodyDeadline(inner, max_body, body_timeout)  # type: ignore[method-assign]

    @app.before_request
    def refuse_oversized_bodies() -> None:
        # BodyDeadline marked the body it would not read, or that ran past the limit; a
        # refusal inside the app lets each blueprint answer it in its own terms (a caller
        # hears an apology, never a 413). Read on the request itself, not its proxy (see
        # ivr.request.current_request).
        if request._get_current_object().environ.get(TOO_LARGE):  # type: ignore[attr-defined]
            abort(413)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: RequestEntityTooLarge) -> Response:
        return _closing(413, "Request body too large")


def _closing(status: int, text: str) -> Response:
    # Close the connection: the server would otherwise read what is left of the body.
    return Response(text + "\n", status, mimetype="text/plain", headers={"Connection": "close"})


class BodyDeadline:
    """WSGI middleware: read the whole (bounded) body before the app runs, or answer 408.

    A deadline per read would not do: a sender trickling one byte a second never trips it.
    At the deadline a watchdog shuts the socket's reading side, which ends the blocked read.
    """

    def __init__(self, app: WsgiApp, max_body: int, timeout: float) -> None:
        self.app = app
        self.max_body = max_body
        self.timeout = timeout
        self.watchdog = Watchdog()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """Serve one request, its body already read."""
        length = _content_length(environ)
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if (length or 0) > self.max_body:
            environ[TOO_LARGE] = True  # refused unread
        elif length or chunked:
            body = self._read(environ, length if length else self.max_body + 1)
            if body is None:
                return _closing(408, "Request body not received in time")(environ, start_response)
            if len(body) > self.max_body:  # a chunked body longer than the limit
                environ[TOO_LARGE] = True
            environ["wsgi.input"] = io.BytesIO(body)
            environ[BODY] = body  # the whole body, bounded: the form parses from it
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
            environ["wsgi.input_terminated"] = True
        return self.app(environ, start_response)

    def _read(self, environ: dict[str, Any], limit: int) -> bytes | None:
        stream = environ["wsgi.input"]
        sock: socket.socket | None = environ.get("gunicorn.socket")
        if sock is not None and _buffered(stream) >= limit:
            # The whole body came in with the headers (a webhook's few KB nearly always do):
            # reading it cannot block, so it needs no deadline.
            sock = None
        cut = _Cut(sock) if sock else None
        ticket = self.watchdog.call_at(time.monotonic() + self.timeout, cut) if cut else None
        chunks, size = [], 0
        try:
            while size < limit:
                chunk = stream.read(min(65536, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except Exception:
            if cut is None or not cut.expired:
                raise
        finally:
            if ticket is not None:
                self.watchdog.cancel(ticket)
        return None if cut is not None and cut.expired else b"".join(chunks)


class _Cut:
    """The watchdog's callback for one body: shut the socket's reading side, and say so.

    A flag, not a threading.Event: it is set once, by the watchdog thread, and read by the
    request's thread after its read returned (an Event costs a lock and a condition on
    every request, for nothing)."""

    __slots__ = ("sock", "expired")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.expired = False

    def __call__(self) -> None:
        self.expired = True
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass  # already closed


def _buffered(stream: Any) -> int:
    """How much of a gunicorn request body is already in memory (read with the headers):
    its Body's own buffer and, up to the body's end, its socket reader's. 0 when the stream
    is not gunicorn's or its insides are not what they were (gunicorn 22-27): then the read
    simply gets a deadline. Private attributes, read only, because gunicorn offers no way to
    ask whether a read would block."""
    try:
        reader = stream.reader
        held = _size(stream.buf)
        if reader.__class__.__name__ != "LengthReader":
            return held
        return held + min(_size(reader.unreader.buf), int(reader.length))
    except (AttributeError, TypeError, ValueError):
        return 0


def _size(buffer: Any) -> int:
    if not isinstance(buffer, io.BytesIO):
        raise TypeError("not a buffer")
    with buffer.getbuffer() as view:
        return view.nbytes


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH", "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


class Watchdog:
    """One thread that runs callbacks at their deadlines (a Timer per request is a thread each)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_at(self, deadline: float, callback: Callable[[], None]) -> int:
        """Run `callback` at `deadline` (time.monotonic) unless cancelled; a ticket."""
        with self._wake:
            ticket = next(self._ids)
            heapq.heappush(self._heap, (deadline, ticket, callback))
            if self._thread is None:
                # Started on first use, in the worker process (not before gunicorn forks).
                self._thread = threading.Thread(target=self._run, name="body-deadline", daemon=True)
                self._thread.start()
            # Woken only when it must wake sooner than it meant to: for the earliest deadline.
            # Deadlines come in order (now + the same timeout), so nearly never: a wake-up per
            # request was a thread switch per request.
            if self._heap[0][1] == ticket:
                self._wake.notify()
            return ticket

    def cancel(self, ticket: int) -> None:
        """Forget a callback that has not run yet."""
        with self._wake:
            self._cancelled.add(ticket)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, ticket, callback = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0 and ticket not in self._cancelled:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                if ticket in self._cancelled:
                    self._cancelled.discard(ticket)
                    continue
            callback()

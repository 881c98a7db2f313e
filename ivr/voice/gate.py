"""One webhook at a time in each `meterline serve` worker, when the database is SQLite.

SQLite lets one connection write at a time. A gthread worker runs up to `--threads` webhooks
at once, each on its own connection, and each of them then queues for that lock inside SQLite,
by sleeping and retrying, while every statement also hands the interpreter to another thread
(about ten thread switches per webhook against bare Flask's two). Taking webhooks in turn in
the process costs one switch at the door instead. In process (`python bench/threads_cpu.py`)
a webhook costs 0.41-0.45 ms of CPU with one thread, 0.60-0.70 ms with 8 threads at once and
0.52-0.54 ms with 8 taking turns; under `meterline serve` at saturation (`python
bench/load.py --without-turns`) turns cut the server's CPU per webhook by 13-22 % in 800-call
runs, with 19-30 % more webhooks a second (docs/benchmarks.md, round four). On PostgreSQL,
which settles concurrent writers itself, turns gave nothing (0.71 ms at once, 0.73 ms taking
turns, in process; in the server 2 % lower on average over eight pairs of runs, 7 and 10 %
higher in two runs side by side), so its webhooks run as before.

The threads stay for what waits without working: a spoken step waiting for its utterance
steps out of the gate (`stepped_out`), and a turn that takes longer than `wait` (a database
that stalls) lets the next webhook in anyway, so no request holds the others for longer than
that. Only Twilio's webhooks (POST under /voice/) take turns; the body guard in front has
already read the body, so a slow sender never holds the gate.

Written here, not taken from a library: it is a lock with a bounded wait and a thread-local
flag, and the stepping out is this app's own need.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ivr.guards import WsgiApp
from ivr.request import WEBHOOKS

# Webhooks queue for milliseconds under load; one still waiting after this is behind a
# stalled database, and goes in as it would without the gate.
DEFAULT_WAIT = 0.5


class WebhookGate:
    """A process's turns: at most one webhook inside, others wait up to `wait` seconds."""

    def __init__(self, wait: float = DEFAULT_WAIT) -> None:
        self.wait = wait
        self._lock = threading.Lock()
        self._held = threading.local()

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Wait for the turn (or `wait` seconds), run, hand the turn on."""
        self._held.turn = self._lock.acquire(timeout=self.wait)
        try:
            yield
        finally:
            if self._held.turn:
                self._held.turn = False
                self._lock.release()

    @contextmanager
    def stepped_out(self) -> Iterator[None]:
        """Let other webhooks in while this one waits on something that is not its work;
        then queue for the turn again. Nothing to do in a thread without the turn."""
        if not getattr(self._held, "turn", False):
            yield
            return
        self._held.turn = False
        self._lock.release()
        try:
            yield
        finally:
            self._held.turn = self._lock.acquire(timeout=self.wait)

    def around(self, app: WsgiApp) -> WsgiApp:
        """WSGI middleware: the webhooks (POST under /voice/) of `app` take turns."""

        def gated(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if environ.get("REQUEST_METHOD") == "POST" and path.startswith(WEBHOOKS):
                with self.admitted():
                    return app(environ, start_response)
            return app(environ, start_response)

        return gated


GATE = WebhookGate()
"""The process's gate (each gunicorn worker imports its own after the fork)."""

"""How many media streams may be open: per call and in all, per process.

Twilio opens one stream per call (a second only on a reconnect); anything beyond that is not
Twilio. Sockets that have not yet shown a valid token count too, so strangers cannot pile up
half-open sockets either.
"""

from __future__ import annotations

import threading
from collections import Counter

PER_CALL = 2  # a reconnect may overlap the old stream's last moments
DEFAULT_STREAMS = 300  # accepted streams: calls speaking at once, per process
DEFAULT_SOCKETS = 400  # open sockets, accepted or not yet, per process


class StreamGate:
    """Counts open sockets and accepted streams; thread-safe (both servers use it)."""

    def __init__(self, max_streams: int = DEFAULT_STREAMS, max_sockets: int = DEFAULT_SOCKETS):
        self.max_streams = max_streams
        self.max_sockets = max_sockets
        self._lock = threading.Lock()
        self._sockets = 0
        self._calls: Counter[str] = Counter()

    def open_socket(self) -> bool:
        """A socket connected; False (close it at once) when too many are open."""
        with self._lock:
            if self._sockets >= self.max_sockets:
                return False
            self._sockets += 1
            return True

    def close_socket(self) -> None:
        """A socket from `open_socket` closed."""
        with self._lock:
            self._sockets -= 1

    def admit(self, call_sid: str) -> bool:
        """A stream with a valid token for this call; False when the call or the process
        already has as many as allowed."""
        with self._lock:
            if self._calls[call_sid] >= PER_CALL or sum(self._calls.values()) >= self.max_streams:
                return False
            self._calls[call_sid] += 1
            return True

    def leave(self, call_sid: str) -> None:
        """An admitted stream ended."""
        with self._lock:
            self._calls[call_sid] -= 1
            if self._calls[call_sid] <= 0:
                del self._calls[call_sid]

    @property
    def streams(self) -> int:
        """Admitted streams open now."""
        with self._lock:
            return sum(self._calls.values())

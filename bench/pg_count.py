"""Count PostgreSQL round trips and statements on the wire: a loopback TCP proxy that reads the
frontend/backend protocol (https://www.postgresql.org/docs/current/protocol-message-formats.html).

A round trip is a turn of the conversation: the client sends something after the server last
spoke (or first), however many messages a turn holds (a psycopg pipeline sends several queries
in one turn). Statements are Query ('Q') and Execute ('E') messages. The pool pre-ping, BEGIN
and COMMIT are statements too, so they are counted. Needs `sslmode=disable` on the URL (on
an encrypted stream the proxy could still count turns, not statements).
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections import Counter

from sqlalchemy.engine import make_url


class CountingProxy:
    """Forwards 127.0.0.1:<port> to a PostgreSQL server, counting turns and messages."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.turns = 0
        self.messages: Counter[str] = Counter()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def url_for(self, database_url: str) -> str:
        """The same database URL through this proxy, unencrypted so messages can be read."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        url = url.update_query_dict({"sslmode": "disable"})
        return url.render_as_string(hide_password=False)

    def reset(self) -> None:
        """Start counting afresh (after a warm-up)."""
        with self._lock:
            self.turns = 0
            self.messages = Counter()

    @property
    def statements(self) -> int:
        """Simple-protocol queries plus extended-protocol executes."""
        with self._lock:
            return self.messages["Q"] + self.messages["E"]

    def close(self) -> None:
        """Stop accepting and forwarding."""
        self._stop.set()
        self._acceptor.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        parser = _FrontendParser()
        server_spoke_last = True
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        kinds = parser.feed(data)
                        with self._lock:
                            if server_spoke_last:
                                self.turns += 1
                            self.messages.update(kinds)
                        server_spoke_last = False
                    else:
                        server_spoke_last = True
                    pair[sock].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()


class _FrontendParser:
    """Splits the client's byte stream into messages; the first ones carry no type byte."""

    SSL_OR_GSS = (80877103, 80877104)

    def __init__(self) -> None:
        self.buffer = b""
        self.started = False

    def feed(self, data: bytes) -> list[str]:
        self.buffer += data
        kinds: list[str] = []
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return kinds
                (length, code) = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return kinds
                self.buffer = self.buffer[length:]
                self.started = code not in self.SSL_OR_GSS
                kinds.append("startup")
                continue
            if len(self.buffer) < 5:
                return kinds
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return kinds
            kinds.append(chr(self.buffer[0]))
            self.buffer = self.buffer[1 + length :]

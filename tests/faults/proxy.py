"""A TCP proxy on loopback between our server and PostgreSQL that a test can cut and restore.

Cutting closes every open connection and refuses new ones (accepts, then closes at once), as
PostgreSQL does while it restarts; hanging accepts new ones and never answers, as a hung
server does; restoring lets connections through again. The machine's shared PostgreSQL
server is never touched.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to `target`; `cut()` and `restore()` switch the line."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._up = threading.Event()
        self._up.set()
        self._hung = False  # while cut: hold new connections open, silent, instead of closing
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def url_for(self, database_url: str) -> str:
        """The same database URL, through this proxy."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def cut(self) -> None:
        """Drop every connection now and refuse new ones until `restore()`."""
        self._up.clear()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            _close(sock)

    def hang(self) -> None:
        """Cut, and from now on accept connections but never answer (a hung server)."""
        self._hung = True
        self.cut()

    def restore(self) -> None:
        """Let connections through again."""
        self._hung = False
        self._up.set()

    def close(self) -> None:
        """Stop the proxy and every thread it started."""
        self._stop.set()
        self.cut()
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
            if not self._up.is_set():
                if self._hung:
                    with self._lock:
                        self._open.add(client)  # closed by the next cut() or close()
                else:
                    _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        pair = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set() and self._up.is_set():
                readable, _, _ = select.select(list(pair), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    pair[sock].sendall(data)
        except (OSError, ValueError):  # a socket closed by cut()
            return
        finally:
            with self._lock:
                self._open.discard(client)
                self._open.discard(upstream)
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@contextmanager
def cuttable(database_url: str) -> Iterator[CuttableProxy]:
    """A proxy in front of the PostgreSQL server of `database_url`, closed afterwards."""
    url = make_url(database_url)
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield proxy
    finally:
        proxy.close()

"""Bodies too large or too slow are refused before a signature or CSRF token is checked.

Against a real `meterline serve` (gunicorn), since what matters is what the server reads
and how long a connection holds a worker thread.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests
from flask import Flask

from tests.conftest import TEST_TOKEN
from tests.support.server import Server, running_server
from tests.support.twilio import signed_headers

BODY_TIMEOUT = 2  # seconds, METERLINE_BODY_TIMEOUT of the test server
FIELDS = {"CallSid": "CA" + "5" * 32, "From": "+79211234567", "CallStatus": "completed"}


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[Server]:
    """One worker of 8 threads: few enough that holding them all would show."""
    extra = {"METERLINE_BODY_TIMEOUT": str(BODY_TIMEOUT)}
    with running_server(database_url, extra=extra, workers=1) as running:
        yield running


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=xyz"


def _head(path: str, length: int, kind: str = URLENCODED) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
        f"X-Twilio-Signature: Zm9yZ2VkIHNpZ25hdHVyZQ==\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _status(sock: socket.socket) -> int:
    reply = b""
    while b"\r\n" not in reply:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return int(reply.split(b" ", 2)[1]) if reply else 0


@pytest.mark.parametrize("kind", [URLENCODED, MULTIPART])
@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/status", "/operator/sign-in"])
def test_a_hundred_megabyte_form_is_refused_unread(server: Server, path: str, kind: str) -> None:
    """Multipart is the dangerous one: up to 1000 fields of 500 KB each were kept in memory."""
    part = b'--xyz\r\nContent-Disposition: form-data; name="CallSid"\r\n\r\n' + b"1" * 4000
    with _connect(server) as sock:
        sock.sendall(_head(path, 100 * 1024 * 1024, kind) + part)
        started = time.monotonic()
        # Without the other 99.9 MB: a webhook answers with the apology (Twilio never gets
        # a 4xx), the operator view with 413.
        assert _status(sock) == (413 if path.startswith("/operator") else 200)
        assert time.monotonic() - started < 2


def test_a_chunked_body_over_the_limit_is_refused(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            yield b"a=" + b"1" * 1024 + b"&"

    answer = requests.post(server.url + "/operator/sign-in", data=chunks(), timeout=10)
    assert answer.status_code == 413


def test_a_signed_webhook_of_normal_size_is_still_served(server: Server) -> None:
    url = server.url + "/voice/status"
    answer = requests.post(
        url, data=FIELDS, headers=signed_headers(TEST_TOKEN, url, FIELDS), timeout=10
    )
    assert answer.status_code == 200


def _trickle(server: Server, path: str) -> socket.socket:
    """A connection that sent its headers and the first byte of a 2 KB body."""
    sock = _connect(server)
    sock.sendall(_head(path, 2048) + b"C")
    return sock


def test_a_body_sent_byte_by_byte_is_cut_off_at_the_deadline(server: Server) -> None:
    with _trickle(server, "/voice/incoming") as sock:
        started = time.monotonic()
        sock.settimeout(0.5)
        status = 0
        while time.monotonic() - started < BODY_TIMEOUT + 5:
            try:
                status = _status(sock)
                break
            except TimeoutError:
                try:
                    sock.sendall(b"a")  # one byte every half second
                except OSError:
                    break
        elapsed = time.monotonic() - started
    assert status == 408
    assert elapsed < BODY_TIMEOUT + 2


def test_slow_bodies_on_every_thread_do_not_keep_signed_webhooks_out(server: Server) -> None:
    """Twelve trickling connections against 8 threads: a webhook is still served in time."""
    slow = [_trickle(server, "/operator/sign-in") for _ in range(12)]
    try:
        time.sleep(0.5)
        url = server.url + "/voice/status"
        started = time.monotonic()
        answer = requests.post(
            url, data=FIELDS, headers=signed_headers(TEST_TOKEN, url, FIELDS), timeout=14
        )
        assert answer.status_code == 200
        assert time.monotonic() - started < BODY_TIMEOUT * 2 + 2  # Twilio waits 15 s
    finally:
        for sock in slow:
            sock.close()


def test_the_test_client_sees_the_same_limit(app: Flask) -> None:
    answer = app.test_client().post("/operator/sign-in", data={"x": "1" * 70000})
    assert answer.status_code == 413

"""Media-stream sockets from strangers hold no web worker thread, get one hard deadline to
show a token, and are bounded per call and in all. Against a real `meterline serve` with
the real (Korean) model, its streams on the stream server's own port."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ivr.streams import START_TIMEOUT, stream_token
from storage.db import make_engine
from storage.models import Utterance
from tests.conftest import TEST_TOKEN
from tests.integration.vosk_audio import korean_model
from tests.support.server import Server, running_server
from tests.support.twilio import signed_headers

SECRET = "e2e-secret"  # what tests.support.server gives the server
MAX_STREAMS = 3


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker of 8 threads, at most three streams."""
    extra = {"METERLINE_VOSK_MODEL": str(korean_model()), "METERLINE_MAX_STREAMS": "3"}
    log = tmp_path_factory.mktemp("streams") / "server.log"
    with running_server(database_url, extra=extra, workers=1, log_path=log) as running:
        _wait_for_the_model(running, database_url)
        yield running


def _wait_for_the_model(server: Server, database_url: str) -> None:
    """Until a stream gets its recognizer: the model is loaded, and admitted streams no
    longer wait for it (which would make their timing the model's, not the gate's)."""
    sid = "CA" + "f" * 32
    engine = make_engine(database_url)
    try:
        with connect(server.env["METERLINE_STREAM_URL"], open_timeout=30) as ws:
            ws.send(json.dumps({"event": "connected"}))
            ws.send(start(sid))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    found = conn.scalar(select(Utterance.id).where(Utterance.call_sid == sid))
                if found is not None:
                    return
                time.sleep(0.2)
        raise AssertionError("the model did not load in 60 s")
    finally:
        engine.dispose()


def incoming(server: Server, n: int) -> tuple[float, ET.Element]:
    """A signed "a call comes in": seconds to the answer, and its TwiML."""
    url = server.url + "/voice/incoming"
    fields = {"CallSid": f"CA{n:032d}", "From": f"+7921{n:07d}", "CallStatus": "ringing"}
    started = time.monotonic()
    answer = requests.post(url, data=fields, headers=signed_headers(TEST_TOKEN, url, fields))
    assert answer.status_code == 200
    return time.monotonic() - started, ET.fromstring(answer.text)


def stream_url(server: Server) -> str:
    """The URL the TwiML tells Twilio to stream to."""
    _, twiml = incoming(server, 999)
    stream = twiml.find("Start/Stream")
    assert stream is not None
    return str(stream.get("url"))


def start(sid: str, token: str | None = None) -> str:
    """Twilio's `start` message for a call."""
    params = {"token": token if token is not None else stream_token(SECRET, sid)}
    return json.dumps(
        {
            "event": "start",
            "streamSid": "MZ" + sid[2:],
            "start": {"callSid": sid, "customParameters": params, "tracks": ["inbound"]},
        }
    )


def closed_with(ws: ClientConnection, within: float) -> int | None:
    """The close code the server sends within `within` seconds (None if still open)."""
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.05, deadline - time.monotonic()))
    except TimeoutError:
        return None
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else 1006
    return None


def test_the_stream_url_is_not_the_web_servers(server: Server) -> None:
    assert not stream_url(server).startswith(server.url.replace("http", "ws"))


@pytest.fixture
def sockets() -> Iterator[ExitStack]:
    """Where a test keeps the sockets it opens; all closed afterwards."""
    with ExitStack() as stack:
        yield stack


def test_forty_idle_sockets_do_not_keep_webhooks_waiting(
    server: Server, sockets: ExitStack
) -> None:
    url = stream_url(server)
    idle = [sockets.enter_context(connect(url, open_timeout=5)) for _ in range(40)]
    for ws in idle[:20]:
        ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
    seconds = [incoming(server, n)[0] for n in range(5)]
    assert max(seconds) < 2, seconds  # Twilio gives up after 15 s


def test_messages_do_not_move_the_start_deadline(server: Server) -> None:
    with connect(stream_url(server), open_timeout=5) as ws:
        opened = time.monotonic()
        ws.send(json.dumps({"event": "connected"}))
        code = None
        while code is None and time.monotonic() - opened < START_TIMEOUT + 3:
            try:
                ws.send(json.dumps({"event": "mark"}))  # what used to re-arm the timeout
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                break
            code = closed_with(ws, 0.5)
        assert code is not None and time.monotonic() - opened < START_TIMEOUT + 1.5


@pytest.mark.parametrize(
    "first",
    [
        json.dumps({"event": "media", "media": {"payload": "AAAA"}}),
        "not json",
        start("CA" + "1" * 32, token="forged"),
    ],
)
def test_anything_but_connected_then_start_with_its_token_is_refused_at_once(
    server: Server, first: str
) -> None:
    with connect(stream_url(server), open_timeout=5) as ws:
        ws.send(first)
        assert closed_with(ws, 2) == 1008


def test_streams_are_bounded_per_call_and_in_all(server: Server, sockets: ExitStack) -> None:
    url = stream_url(server)

    def stream_for(sid: str) -> ClientConnection:
        ws = sockets.enter_context(connect(url, open_timeout=5))
        ws.send(json.dumps({"event": "connected"}))
        ws.send(start(sid))
        return ws

    one = "CA" + "a" * 32
    first, second = stream_for(one), stream_for(one)
    assert closed_with(first, 1) is None and closed_with(second, 0.2) is None
    assert closed_with(stream_for(one), 2) == 1008  # a third for the same call
    assert closed_with(stream_for("CA" + "b" * 32), 1) is None  # the third in all
    assert closed_with(stream_for("CA" + "c" * 32), 2) == 1008  # the fourth in all
    first.close()
    admitted = False
    for n in range(20):  # the server lets the closed one go as soon as it notices
        if closed_with(stream_for(f"CA{n:032d}"), 0.5) is None:
            admitted = True
            break
    assert admitted  # a place came free

"""The media-stream server of `meterline serve`: every call's audio socket on one asyncio loop.

Under gunicorn each WebSocket held a web worker thread for the whole call, so about 16 idle
sockets (2 workers × 8 threads) kept `/voice/incoming` from answering. Here the sockets
cost a coroutine each; recognition (CPU) and the database writes run on a small pool of
threads of their own, a batch of frames at a time. It listens on its own port
(`METERLINE_STREAM_PORT`), which the reverse proxy maps `/voice/stream` to.

Each gunicorn worker runs one (the port is shared with SO_REUSEPORT), next to the model the
worker loaded: the limits of `gate.py` apply per worker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any, TypeVar

from flask import Flask
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ivr.services import Services
from ivr.streams import (
    IDLE_TIMEOUT,
    PAUSE_SECONDS,
    START_TIMEOUT,
    STREAM_PATH,
    gate_for,
    stream_config,
)
from ivr.streams.session import CallStream
from ivr.streams.store import maybe_purge

log = logging.getLogger("meterline.streams")
T = TypeVar("T")
BATCH = 5  # media messages (20 ms each) handed to the recognizer thread at once
MAX_MESSAGE = 64 * 1024  # Twilio's messages are well under 1 KB


class StreamServer:
    """An asyncio WebSocket server for `/voice/stream` in a thread of its own."""

    def __init__(self, app: Flask, host: str, port: int, threads: int = 4) -> None:
        self.svc: Services = app.extensions["meterline"]
        self.host, self.port = host, port
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="stream-work")
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stream-server", daemon=True)

    def start(self) -> StreamServer:
        """Start listening; raises if the port cannot be bound."""
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Close every socket and stop."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(), or logged once running
            self._error = exc
            if self._ready.is_set():
                log.exception("the stream server stopped")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server: Server
        async with serve(
            self._handle,
            self.host,
            self.port,
            reuse_port=True,
            max_size=MAX_MESSAGE,
            open_timeout=START_TIMEOUT,
            # No pings: Twilio's side, and the call simulator's, need not answer them; a
            # socket is closed after IDLE_TIMEOUT without a message instead.
            ping_interval=None,
            process_request=_only_stream_path,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            log.info("media streams served on %s:%d", self.host, self.port)
            await self._stop.wait()

    async def _work(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def _handle(self, ws: ServerConnection) -> None:
        gate = gate_for(self.svc)
        if not gate.open_socket():
            await ws.close(1013, "too many streams")  # try again later
            return
        settings = self.svc.settings
        stream = CallStream(stream_config(self.svc))
        try:
            await self._work(maybe_purge, settings.audio_dir, settings.audio_keep_days)
            if await self._authenticate(ws, stream):
                await self._listen(ws, stream)
        except ConnectionClosed:
            pass
        finally:
            try:
                await self._work(stream.finish)
            except RuntimeError:  # the pool is gone: the worker is exiting
                stream.finish()
            gate.close_socket()
            # 1008: policy violation (bad token, junk, too slow); 1011: our recognizer failed.
            code = 1008 if stream.refused else 1011 if stream.failed else 1000
            await ws.close(code)

    async def _authenticate(self, ws: ServerConnection, stream: CallStream) -> bool:
        """`connected` then `start` with a good token, received within START_TIMEOUT of
        opening. One deadline: messages do not move it; our own work (a model still
        loading) does not count against the caller."""
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not stream.started:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await ws.recv()
            except TimeoutError:
                log.warning("media stream refused: no valid start within %.0f s", START_TIMEOUT)
                stream.refused = True
                return False
            if not await self._work(stream.handle, message):
                return False
        return True

    async def _listen(self, ws: ServerConnection, stream: CallStream) -> None:
        """Messages until `stop`, a refusal, or silence; frames go to the recognizer in
        batches of BATCH, so a call costs a thread hop every 100 ms, not every frame."""
        batch: list[str | bytes] = []
        while True:
            waiting = bool(batch) or stream.pending
            try:
                message = await asyncio.wait_for(
                    ws.recv(), PAUSE_SECONDS if waiting else IDLE_TIMEOUT
                )
            except TimeoutError:
                if not waiting:
                    return
                if not await self._work(_handle_all, stream, batch) or not await self._work(
                    stream.flush
                ):
                    return
                batch = []
                continue
            batch.append(message)
            if len(batch) >= BATCH or '"media"' not in str(message)[:40]:
                if not await self._work(_handle_all, stream, batch):
                    return
                batch = []


def _handle_all(stream: CallStream, messages: list[str | bytes]) -> bool:
    """Hand messages to the stream in order; False as soon as it should close."""
    for message in messages:
        if not stream.handle(message):
            return False
    return True


def _only_stream_path(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] != STREAM_PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
    return None


def start_stream_server(app: Flask, host: str, port: int) -> StreamServer:
    """Serve this app's media streams on host:port (0 picks a free port)."""
    return StreamServer(app, host, port).start()

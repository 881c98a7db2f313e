"""`meterline agi`'s FastAGI server: one asyncio task per call, the step driver in threads.

Each connection is one call. The channel's `agi_uniqueid` is the call's key and
`agi_callerid` its caller; no other AGI variable is trusted (FastAGI has no authentication).
Each step runs the same `VoiceService` as the Twilio webhooks, in a thread pool, so a call
waiting on the database never holds up another call's audio; the connections themselves are
asyncio, so 200 calls cost 200 sockets, not 200 threads.

panoramisk's `Request` speaks the protocol (commands and their results). Its `Application`
handler is not used: it reads the headers in a loop that never ends when a peer closes before
sending them, and it has no place to refuse a peer before reading; `_read_headers` replaces it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from panoramisk.fast_agi import Request
from panoramisk.utils import parse_agi_result

from ivr.agi.channel import AgiFailure, Channel, ChannelGone
from ivr.agi.plan import Plan
from ivr.phones import mask
from ivr.voice.calls import VoiceService

log = logging.getLogger(__name__)

SCRIPT = "meterline"  # the dialplan's AGI(agi://host:port/meterline)
MAX_HEADERS = 16384  # Asterisk sends about 1 KB of agi_* variables
HEADER_TIMEOUT = 10.0
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")


def _no_url(seq: int) -> str:
    return ""  # a channel knows its own next step; AGI replies name no URL


class PeerRequest(Request):
    """panoramisk's Request, with a closed connection reported as a hang-up."""

    async def _read_result(self) -> dict[str, Any]:
        line = await self.reader.readline()
        if not line.endswith(b"\n"):
            raise ChannelGone("connection closed")
        result: dict[str, Any] = parse_agi_result(line.decode(self.encoding).rstrip("\r\n"))
        return result


class Steps:
    """How long a call's steps took in the step driver (what the caller waits for)."""

    def __init__(self) -> None:
        self.count, self.total, self.slowest = 0, 0.0, 0.0

    async def timed(self, step: Awaitable[T]) -> T:
        """Run one step, counting its time."""
        started = time.perf_counter()
        try:
            return await step
        finally:
            took = time.perf_counter() - started
            self.count, self.total = self.count + 1, self.total + took
            self.slowest = max(self.slowest, took)

    def __str__(self) -> str:
        return f"{self.count} steps, slowest {self.slowest:.3f} s, total {self.total:.3f} s"


class FastAgiServer:
    """Serves calls handed over by Asterisk's dialplan."""

    def __init__(self, service: VoiceService, allow: Sequence[Network], workers: int = 32):
        self.service = service
        self.allow = tuple(allow)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agi-step")

    def allowed(self, host: str) -> bool:
        """Whether a peer address is inside METERLINE_AGI_ALLOW."""
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen; the returned server is already accepting."""
        return await asyncio.start_server(self.handle, host, port, limit=MAX_HEADERS, backlog=512)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One FastAGI connection: check the peer, read the call's variables, run the call."""
        peer = writer.get_extra_info("peername") or ("?",)
        try:
            if not self.allowed(str(peer[0])):
                log.warning(
                    "FastAGI connection from %s refused: not in METERLINE_AGI_ALLOW", peer[0]
                )
                return
            headers = await _read_headers(reader)
            if headers is None:
                log.warning("FastAGI connection from %s closed before its variables", peer[0])
                return
            script = headers.get("agi_network_script", "")
            if script.split("?")[0].strip("/") != SCRIPT:
                log.warning("FastAGI request for unknown script %r refused", script[:80])
                return
            await self.call(PeerRequest(None, headers, reader, writer))
        except asyncio.CancelledError:
            # `meterline agi` is stopping; the call was closed as dropped. Ending the task
            # normally spares asyncio's stream callback a CancelledError it would log.
            pass
        finally:
            writer.close()

    async def _sync(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args))

    async def call(self, request: Request) -> None:
        """Drive one call through the step driver until it ends or the caller hangs up."""
        sid = request.headers.get("agi_uniqueid", "")
        caller = request.headers.get("agi_callerid", "")
        channel = Channel(request)
        log.info("AGI call %s from %s", sid, mask(caller))
        steps = Steps()
        try:
            await channel.command("ANSWER")
            form = {"CallSid": sid, "From": caller}
            reply = await steps.timed(self._sync(self.service.incoming, form, _no_url))
            seq = 1
            while True:
                outcome = await channel.run(Plan.from_json(reply))
                if outcome.transfer_ended is not None:  # as Twilio's Dial action reports it
                    form = {"CallSid": sid, "DialCallStatus": outcome.transfer_ended}
                elif outcome.digits is None:
                    break
                else:
                    form = {"CallSid": sid, "Digits": outcome.digits}
                reply = await steps.timed(self._sync(self.service.step, form, seq, _no_url))
                seq += 1
        except ChannelGone:
            log.info("AGI call %s: the caller hung up", sid)
        except (AgiFailure, ConnectionError) as exc:
            log.warning("AGI call %s: %s", sid, exc)
        except Exception as exc:
            log.exception("AGI call %s failed", sid)
            await self._apologise(channel, sid, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            await self._closed(sid)
            log.info("AGI call %s closed: %s", sid, steps)

    async def _apologise(self, channel: Channel, sid: str, detail: str) -> None:
        """Flag the fault and tell the caller, as the webhooks do; the caller may be gone."""
        try:
            reply = await self._sync(self.service.fail, sid or None, detail)
            await channel.run(Plan.from_json(reply))
        except (ChannelGone, AgiFailure, ConnectionError):
            pass

    async def _closed(self, sid: str) -> None:
        """The call is over: what Twilio's status callback does (a dropped call is flagged)."""
        try:
            await self._sync(self.service.status, {"CallSid": sid, "CallStatus": "completed"})
        except Exception:
            log.exception("AGI call %s: closing the call failed", sid)


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """The agi_* variables up to the blank line; None if the peer leaves or stalls first."""
    headers: dict[str, str] = {}
    try:
        async with asyncio.timeout(HEADER_TIMEOUT):
            while True:
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    return None
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                if not text:
                    return headers
                key, sep, value = text.partition(": ")
                if sep and len(headers) < 200:
                    headers[key] = value
    except (TimeoutError, ValueError, ConnectionError):  # ValueError: a line over the limit
        return None

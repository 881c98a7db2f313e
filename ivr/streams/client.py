"""Send a WAV to a Media Streams endpoint as Twilio would: the call simulator's voice."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

from speech.audio import read_wav, resample, ulaw_encode

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
FRAME_SECONDS = 0.02
SILENCE = b"\xff" * FRAME_BYTES  # μ-law zero
ACCOUNT_SID = "AC" + "0" * 32  # Twilio sends the account's; nothing here checks it


def twilio_messages(
    call_sid: str, token: str, ulaw: bytes, silence_seconds: float = 1.0
) -> list[dict[str, Any]]:
    """The messages Twilio sends for this audio: connected, start, media frames, stop."""
    stream_sid = "MZ" + uuid.uuid4().hex
    audio = ulaw + SILENCE * int(silence_seconds / FRAME_SECONDS)
    if len(audio) % FRAME_BYTES:
        audio += b"\xff" * (FRAME_BYTES - len(audio) % FRAME_BYTES)
    messages = [
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
        _start(stream_sid, call_sid, token),
    ]
    for chunk, offset in enumerate(range(0, len(audio), FRAME_BYTES), start=1):
        messages.append(_media(stream_sid, chunk, audio[offset : offset + FRAME_BYTES]))
    messages.append(
        {
            "event": "stop",
            "sequenceNumber": str(len(messages)),
            "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid},
            "streamSid": stream_sid,
        }
    )
    return messages


def _start(stream_sid: str, call_sid: str, token: str) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": {"token": token},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
        "streamSid": stream_sid,
    }


def _media(stream_sid: str, chunk: int, frame: bytes) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(chunk + 1),
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(int((chunk - 1) * FRAME_SECONDS * 1000)),
            "payload": base64.b64encode(frame).decode(),
        },
        "streamSid": stream_sid,
    }


def wav_as_ulaw(wav_path: str | Path) -> bytes:
    """A mono 16-bit WAV of any rate as 8 kHz μ-law."""
    pcm, rate = read_wav(wav_path)
    return ulaw_encode(resample(pcm, rate, 8000))


def stream_wav(
    ws_url: str,
    call_sid: str,
    token: str,
    wav_path: str | Path,
    *,
    realtime: bool = False,
    timeout: float = 60.0,
) -> int:
    """Stream a WAV as a call's inbound audio, then wait for the server to close; frames sent."""
    import websocket

    messages = twilio_messages(call_sid, token, wav_as_ulaw(wav_path))
    ws = websocket.create_connection(ws_url, timeout=timeout)
    frames = 0
    try:
        for message in messages:
            try:
                ws.send(json.dumps(message))
            except (websocket.WebSocketConnectionClosedException, ConnectionError):
                # The server may close a stream it refuses (a forged token) while we are
                # still sending: that is its answer, not a client failure.
                return frames
            if message["event"] == "media":
                frames += 1
                if realtime:
                    time.sleep(FRAME_SECONDS)
        # The server recognizes the tail and stores it before closing: wait for that close.
        _wait_for_close(ws)
    finally:
        ws.close()
        ws.shutdown()  # close() skips the socket when the server closed first
    return frames


def _wait_for_close(ws: Any) -> None:
    import websocket

    try:
        while ws.recv():
            pass
    except (websocket.WebSocketConnectionClosedException, ConnectionError):
        pass

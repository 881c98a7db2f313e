"""The simulated phone's audio: one Media Streams WebSocket for the whole call, as Twilio keeps.

Opened when the TwiML says `<Start><Stream>`; each spoken answer is a WAV sent as μ-law
media frames followed by a second of silence, so the recognizer hears the utterance end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import websocket

from ivr.streams.client import twilio_messages, wav_as_ulaw


class LiveStream:
    """A call's inbound audio stream to our `/voice/stream` endpoint."""

    def __init__(self, ws_url: str, call_sid: str, token: str, timeout: float = 15.0):
        self.call_sid = call_sid
        self.token = token
        self.sequence = 0
        self.ws = websocket.create_connection(ws_url, timeout=timeout)
        connected, start = twilio_messages(call_sid, token, b"", silence_seconds=0)[:2]
        self.stream_sid = str(start["streamSid"])
        self._send(connected)
        self._send(start)

    def say(self, wav_path: str | Path) -> int:
        """Send a WAV as the caller's voice, then a second of silence; frames sent."""
        messages = twilio_messages(self.call_sid, self.token, wav_as_ulaw(wav_path))
        frames = 0
        for message in messages[2:-1]:
            message["streamSid"] = self.stream_sid
            self._send(message)
            frames += 1
        return frames

    def close(self) -> None:
        """Send `stop` and close, as Twilio does when the call ends."""
        try:
            self._send({"event": "stop", "streamSid": self.stream_sid,
                        "stop": {"callSid": self.call_sid}})  # fmt: skip
        except (websocket.WebSocketException, OSError):
            pass  # the server may already have closed a refused stream
        finally:
            self.ws.close()

    def _send(self, message: dict[str, Any]) -> None:
        self.sequence += 1
        message["sequenceNumber"] = str(self.sequence)
        self.ws.send(json.dumps(message))

"""The recognizer over vosk-server's WebSocket protocol, for a pool of recognizer hosts.

Protocol (alphacep/vosk-server, websocket/asr_server.py): a text frame `{"config": {...}}`,
then binary frames of 16-bit PCM, each answered by one JSON text frame, either
`{"partial": ...}` or a final `{"result": [...], "text": ...}`; the literal text frame
`{"eof" : 1}` asks for the final result and ends the session.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from speech.recognizer import Result

# vosk-server compares the message to this exact string, spaces included.
EOF_MESSAGE = '{"eof" : 1}'
TELEPHONE_RATE = 8000


class VoskServerRecognizer:
    """One call's recognition on a vosk-server; audio is sent in ~200 ms batches.

    vosk-server ends its session after `final()`; more audio afterwards opens a new session,
    and word times keep counting from the start of the call.
    """

    def __init__(
        self,
        url: str,
        grammar: Sequence[str] | None = None,
        sample_rate: int = TELEPHONE_RATE,
        batch_seconds: float = 0.2,
        timeout: float = 10.0,
    ) -> None:
        self.sample_rate = sample_rate
        self._url, self._timeout = url, timeout
        self._config: dict[str, Any] = {"sample_rate": sample_rate, "words": 1}
        if grammar:
            # The server builds KaldiRecognizer(model, rate, phrase_list); it lacks "[unk]".
            self._config["phrase_list"] = [*grammar, "[unk]"]
        self._batch = int(sample_rate * batch_seconds) * 2
        self._buffer = bytearray()
        self._ws: Any = None
        self._offset = 0.0  # seconds of audio in the sessions before this one
        self._session_bytes = 0
        self._connect()  # now, so that a pool that is down is noticed when the stream starts

    def _connect(self) -> None:
        import websocket

        self._ws = websocket.create_connection(self._url, timeout=self._timeout)
        self._ws.send(json.dumps({"config": self._config}, ensure_ascii=False))
        self._session_bytes = 0

    def accept(self, pcm: bytes) -> Result | None:
        """Buffer PCM; send a batch when full, a Result when the server ended an utterance."""
        self._buffer += pcm
        if len(self._buffer) < self._batch:
            return None
        return self._send_buffer()

    def _send_buffer(self) -> Result | None:
        if self._ws is None:
            self._connect()
        data, self._buffer = bytes(self._buffer), bytearray()
        self._ws.send_binary(data)
        self._session_bytes += len(data)
        reply = json.loads(self._ws.recv())
        if "partial" in reply:
            return None
        result = Result.from_vosk(reply).shifted(self._offset)
        return result if result.text else None

    def final(self) -> Result:
        """Send what is buffered and the end-of-stream message; the server's final result."""
        if self._ws is None and not self._buffer:
            return Result(text="", confidence=0.0)
        pending = self._send_buffer() if self._buffer else None
        self._ws.send(EOF_MESSAGE)
        last = Result.from_vosk(json.loads(self._ws.recv())).shifted(self._offset)
        self._offset += self._session_bytes / (2 * self.sample_rate)
        self.close()
        if pending is not None and last.text:
            return Result(
                text=f"{pending.text} {last.text}",
                confidence=min(pending.confidence, last.confidence),
                words=pending.words + last.words,
            )
        return pending if pending is not None else last

    def close(self) -> None:
        """Close the socket."""
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
                ws.shutdown()
            except OSError:
                pass

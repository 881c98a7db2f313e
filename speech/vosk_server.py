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
    """One call's recognition session on a vosk-server; audio is sent in ~200 ms batches."""

    def __init__(
        self,
        url: str,
        grammar: Sequence[str] | None = None,
        sample_rate: int = TELEPHONE_RATE,
        batch_seconds: float = 0.2,
        timeout: float = 10.0,
    ) -> None:
        import websocket

        self.sample_rate = sample_rate
        self._batch = int(sample_rate * batch_seconds) * 2
        self._buffer = bytearray()
        self._ws: Any = websocket.create_connection(url, timeout=timeout)
        config: dict[str, Any] = {"sample_rate": sample_rate, "words": 1}
        if grammar:
            # The server builds KaldiRecognizer(model, rate, phrase_list); it lacks "[unk]".
            config["phrase_list"] = [*grammar, "[unk]"]
        self._ws.send(json.dumps({"config": config}, ensure_ascii=False))

    def accept(self, pcm: bytes) -> Result | None:
        """Buffer PCM; send a batch when full, a Result when the server ended an utterance."""
        self._buffer += pcm
        if len(self._buffer) < self._batch:
            return None
        return self._send_buffer()

    def _send_buffer(self) -> Result | None:
        data, self._buffer = bytes(self._buffer), bytearray()
        self._ws.send_binary(data)
        reply = json.loads(self._ws.recv())
        if "partial" in reply:
            return None
        result = Result.from_vosk(reply)
        return result if result.text else None

    def final(self) -> Result:
        """Send what is buffered and the end-of-stream message; the server's final result.

        vosk-server closes the session after `eof`, so the recognizer is done afterwards.
        """
        pending = self._send_buffer() if self._buffer else None
        self._ws.send(EOF_MESSAGE)
        last = Result.from_vosk(json.loads(self._ws.recv()))
        if pending is not None and last.text:
            return Result(
                text=f"{pending.text} {last.text}",
                confidence=min(pending.confidence, last.confidence),
                words=pending.words + last.words,
            )
        return pending if pending is not None else last

    def close(self) -> None:
        """Close the socket."""
        try:
            self._ws.close()
        except OSError:
            pass

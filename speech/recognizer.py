"""The recognizer interface: feed PCM, learn when an utterance ended and what it said.

Three implementations: `VoskRecognizer` (the model in this process, speech/vosk_local.py),
`VoskServerRecognizer` (a vosk-server pool over WebSocket, speech/vosk_server.py) and
`FakeRecognizer` (scripted Russian text, for tests of everything above the recognizer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Word:
    """One recognised word with its confidence and its times in seconds from the stream start."""

    word: str
    conf: float
    start: float
    end: float


@dataclass(frozen=True)
class Result:
    """What the recognizer heard in one utterance."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()

    @classmethod
    def from_vosk(cls, data: dict[str, Any]) -> Result:
        """Build from Vosk's JSON result (`{"text": ..., "result": [{"word", "conf", ...}]}`)."""
        words = tuple(
            Word(str(w["word"]), float(w.get("conf", 1.0)), float(w["start"]), float(w["end"]))
            for w in data.get("result") or ()
        )
        text = str(data.get("text", "")).strip()
        if words:
            confidence = sum(w.conf for w in words) / len(words)
        else:
            confidence = 1.0 if text else 0.0
        return cls(text=text, confidence=confidence, words=words)

    def shifted(self, seconds: float) -> Result:
        """The same result with word times moved later (a session that started mid-stream)."""
        if not seconds:
            return self
        words = tuple(Word(w.word, w.conf, w.start + seconds, w.end + seconds) for w in self.words)
        return Result(text=self.text, confidence=self.confidence, words=words)

    def words_json(self) -> list[dict[str, Any]]:
        """The words as plain dicts, ready for `json.dumps`."""
        return [
            {"word": w.word, "conf": w.conf, "start": w.start, "end": w.end} for w in self.words
        ]


class Recognizer(Protocol):
    """A stream recognizer for one call: PCM in at `sample_rate`, utterances out."""

    sample_rate: int

    def accept(self, pcm: bytes) -> Result | None:
        """Feed 16-bit mono PCM; a Result when an utterance just ended with words in it."""
        ...

    def final(self) -> Result:
        """Flush: the result for whatever audio is still pending (empty text if none)."""
        ...

    def close(self) -> None:
        """Release the recognizer (a socket, a native object)."""
        ...


RecognizerFactory = Callable[[], Recognizer]


@dataclass
class FakeRecognizer:
    """Says the scripted texts in turn, one per `utterance_seconds` of audio fed to it."""

    texts: list[str]
    sample_rate: int = 16000
    utterance_seconds: float = 0.5
    confidence: float = 0.9
    fed: int = 0
    closed: bool = False
    _pending: int = field(default=0, repr=False)

    def accept(self, pcm: bytes) -> Result | None:
        """Count the audio; end an utterance when enough of it arrived."""
        self.fed += len(pcm)
        self._pending += len(pcm)
        if self._pending >= self.utterance_seconds * self.sample_rate * 2 and self.texts:
            self._pending = 0
            return self._say(self.texts.pop(0))
        return None

    def final(self) -> Result:
        """The next scripted text if audio is pending, else an empty result."""
        if self._pending and self.texts:
            self._pending = 0
            return self._say(self.texts.pop(0))
        return Result(text="", confidence=0.0)

    def close(self) -> None:
        """Nothing to release."""
        self.closed = True

    def _say(self, text: str) -> Result:
        end = self.fed / (2 * self.sample_rate)
        words = tuple(Word(w, self.confidence, end - 0.1, end) for w in text.split())
        return Result(text=text, confidence=self.confidence, words=words)


def recognizer_factory(
    model_dir: Path | None,
    server_url: str | None,
    grammar: Sequence[str] | None,
) -> RecognizerFactory | None:
    """A factory for the configured recognizer: vosk-server if a URL is set, else the model."""
    if server_url:
        from speech.vosk_server import VoskServerRecognizer

        words = list(grammar) if grammar is not None else None
        return lambda: VoskServerRecognizer(server_url, grammar=words)
    if model_dir is not None:
        from speech.vosk_local import MODELS, VoskRecognizer

        loaded = MODELS.get(model_dir)
        usable = loaded.usable(grammar) if grammar is not None else None
        return lambda: VoskRecognizer(loaded, grammar=usable)
    return None


def transcribe(recognizer: Recognizer, pcm: bytes, chunk_seconds: float = 0.2) -> list[Result]:
    """Feed a whole buffer in chunks; every utterance with words, the flushed tail included."""
    step = int(recognizer.sample_rate * chunk_seconds) * 2
    results = [r for r in _feed(recognizer, pcm, step) if r is not None]
    tail = recognizer.final()
    if tail.text:
        results.append(tail)
    return results


def _feed(recognizer: Recognizer, pcm: bytes, step: int) -> Iterable[Result | None]:
    for i in range(0, len(pcm), step):
        yield recognizer.accept(pcm[i : i + step])

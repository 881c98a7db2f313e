"""Vosk in this process: one Model per directory per process, shared by every call's recognizer."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech.recognizer import Result

log = logging.getLogger("meterline.speech")
DEFAULT_RATE = 16000


def _vosk() -> Any:
    import vosk

    vosk.SetLogLevel(-1)  # Kaldi's LOG lines go to stderr otherwise, once per recognizer
    return vosk


def model_sample_rate(model_dir: Path) -> int:
    """The rate the model was trained at, from conf/mfcc.conf (16 kHz when unstated)."""
    conf = model_dir / "conf" / "mfcc.conf"
    if conf.is_file():
        m = re.search(r"--sample-frequency=(\d+)", conf.read_text(errors="replace"))
        if m:
            return int(m[1])
    return DEFAULT_RATE


@dataclass
class LoadedModel:
    """A loaded Vosk model with what we learned about it."""

    path: Path
    model: Any
    sample_rate: int
    load_seconds: float
    _vocabulary: frozenset[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def has_word(self, word: str) -> bool:
        """Whether the model's vocabulary has this word (graph/words.txt, else a probe)."""
        if self._vocabulary is None:
            words_txt = self.path / "graph" / "words.txt"
            if words_txt.is_file():
                lines = words_txt.read_text(encoding="utf-8", errors="replace").splitlines()
                self._vocabulary = frozenset(line.split()[0] for line in lines if line.strip())
            else:
                self._vocabulary = frozenset()
        if self._vocabulary:
            return word in self._vocabulary
        # Small models carry their word table inside Gr.fst; Vosk answers -1 when it is absent.
        with self._lock:
            return bool(self.model.vosk_model_find_word(word) >= 0)

    def missing_words(self, words: Iterable[str]) -> list[str]:
        """The words the model cannot recognise (Vosk would drop them from a grammar)."""
        return [w for w in words if not self.has_word(w)]

    def usable(self, grammar: Sequence[str]) -> list[str] | None:
        """The grammar without the words the model lacks, warning about them; None if none left.

        None means "recognise freely": a grammar of only unknown words recognises nothing (and
        an empty one makes Vosk complain), so a model of the wrong language still transcribes.
        """
        missing = set(self.missing_words(grammar))
        if missing:
            log.warning(
                "speech model %s lacks %d of %d grammar words; they cannot be recognised: %s",
                self.path,
                len(missing),
                len(set(grammar)),
                " ".join(sorted(missing)),
            )
        words = [w for w in grammar if w not in missing]
        if not words:
            log.error(
                "speech model %s knows none of the grammar words (wrong language?): "
                "recognising without a grammar",
                self.path,
            )
            return None
        return words


class VoskModelPool:
    """Loads each model directory once per process, lazily and thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[Path, LoadedModel] = {}

    def get(self, model_dir: str | Path) -> LoadedModel:
        """The loaded model for this directory, loading it on first use (1–2 s)."""
        path = Path(model_dir).resolve()
        with self._lock:
            loaded = self._models.get(path)
            if loaded is None:
                started = time.perf_counter()
                model = _vosk().Model(str(path))
                loaded = LoadedModel(
                    path=path,
                    model=model,
                    sample_rate=model_sample_rate(path),
                    load_seconds=time.perf_counter() - started,
                )
                log.info("speech model %s loaded in %.1f s", path, loaded.load_seconds)
                self._models[path] = loaded
            return loaded

    def clear(self) -> None:
        """Forget loaded models (tests)."""
        with self._lock:
            self._models.clear()


MODELS = VoskModelPool()


class VoskRecognizer:
    """One call's recognizer on a shared model; grammar mode when `grammar` is given."""

    def __init__(self, loaded: LoadedModel, grammar: Sequence[str] | None = None) -> None:
        vosk = _vosk()
        self.sample_rate = loaded.sample_rate
        if grammar:
            # ensure_ascii=False: Vosk reads the grammar as raw UTF-8 and does not decode \u
            # escapes, so json.dumps' default would turn every Russian word into a missing one.
            words = [*grammar, *(["[unk]"] if loaded.has_word("[unk]") else [])]
            spec = json.dumps(words, ensure_ascii=False)
            self._rec = vosk.KaldiRecognizer(loaded.model, self.sample_rate, spec)
        else:
            self._rec = vosk.KaldiRecognizer(loaded.model, self.sample_rate)
        self._rec.SetWords(True)

    def accept(self, pcm: bytes) -> Result | None:
        """Feed PCM at `sample_rate`; a Result when Vosk's endpointer closed an utterance."""
        if not pcm or not self._rec.AcceptWaveform(pcm):
            return None
        result = Result.from_vosk(json.loads(self._rec.Result()))
        return result if result.text else None

    def final(self) -> Result:
        """Whatever is pending, as a result (the recognizer can go on afterwards)."""
        return Result.from_vosk(json.loads(self._rec.FinalResult()))

    def close(self) -> None:
        """Drop the native recognizer now rather than at garbage collection."""
        self._rec = None

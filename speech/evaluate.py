"""Score a model on labelled recordings: exact-value accuracy, word error rate, real-time factor.

A recording is labelled by its name (`123.45_ivanov.wav`: the value before the first `_`) or
by a sidecar text file (`x.wav` + `x.txt`) holding the value or what was said. The line hears
callers through the telephone, so by default each file goes through 8 kHz μ-law first.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from speech.audio import duration, read_wav, resample, ulaw_decode, ulaw_encode
from speech.numbers import parse_number, to_words
from speech.recognizer import transcribe
from speech.vocabulary import GRAMMAR_WORDS, tokenize
from speech.vosk_local import MODELS, VoskRecognizer

_NAME_VALUE = re.compile(r"(\d+(?:[.,]\d+)?)(?:_|$)")


@dataclass(frozen=True)
class Label:
    """What a recording should be understood as."""

    value: Decimal
    reference: str  # the words said, for the word error rate


@dataclass(frozen=True)
class Scored:
    """One recording's outcome."""

    path: Path
    expected: Decimal
    got: Decimal | None
    text: str
    word_errors: int
    reference_words: int

    @property
    def correct(self) -> bool:
        """Whether the exact value was understood."""
        return self.got is not None and self.got == self.expected


@dataclass
class Report:
    """All recordings' outcomes and the totals the command prints."""

    items: list[Scored] = field(default_factory=list)
    missing_words: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    processing_seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        """Share of recordings whose exact value was understood."""
        return sum(i.correct for i in self.items) / len(self.items) if self.items else 0.0

    @property
    def wer(self) -> float:
        """Word error rate over all recordings."""
        words = sum(i.reference_words for i in self.items)
        return sum(i.word_errors for i in self.items) / words if words else 0.0

    @property
    def rtf(self) -> float:
        """Processing time over audio time (below 1 is faster than real time)."""
        return self.processing_seconds / self.audio_seconds if self.audio_seconds else 0.0


def label_of(wav: Path) -> Label | None:
    """The label from the file name or the sidecar .txt; None when the file has none."""
    value: Decimal | None = None
    m = _NAME_VALUE.match(wav.stem)
    if m:
        value = Decimal(m[1].replace(",", "."))
    reference = ""
    sidecar = wav.with_suffix(".txt")
    if sidecar.is_file():
        said = sidecar.read_text(encoding="utf-8").strip()
        if re.fullmatch(r"\d+(?:[.,]\d+)?", said):
            value = value if value is not None else Decimal(said.replace(",", "."))
        else:
            reference = said
            value = value if value is not None else parse_number(said)
    if value is None:
        return None
    return Label(value=value, reference=reference or to_words(value))


def word_errors(reference: str, hypothesis: str) -> int:
    """Substitutions, insertions and deletions between two texts, word by word (Levenshtein)."""
    ref, hyp = tokenize(reference), tokenize(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def telephone(pcm: bytes, rate: int) -> bytes:
    """The audio as the line hears it: 8 kHz μ-law, decoded."""
    return ulaw_decode(ulaw_encode(resample(pcm, rate, 8000)))


def evaluate(
    model_dir: Path, data_dir: Path, *, grammar: bool = True, phone: bool = True
) -> Report:
    """Recognize every labelled WAV under `data_dir` and score it."""
    loaded = MODELS.get(model_dir)
    report = Report(missing_words=loaded.missing_words(GRAMMAR_WORDS) if grammar else [])
    words = loaded.usable(GRAMMAR_WORDS) if grammar else None
    for wav in sorted(data_dir.rglob("*.wav")):
        label = label_of(wav)
        if label is None:
            continue
        pcm, rate = read_wav(wav)
        if phone:
            pcm, rate = telephone(pcm, rate), 8000
        pcm = resample(pcm, rate, loaded.sample_rate)
        started = time.perf_counter()
        recognizer = VoskRecognizer(loaded, grammar=words)
        text = " ".join(r.text for r in transcribe(recognizer, pcm))
        recognizer.close()
        report.processing_seconds += time.perf_counter() - started
        report.audio_seconds += duration(pcm, loaded.sample_rate)
        report.items.append(
            Scored(
                path=wav,
                expected=label.value,
                got=parse_number(text),
                text=text,
                word_errors=word_errors(label.reference, text),
                reference_words=len(tokenize(label.reference)),
            )
        )
    return report

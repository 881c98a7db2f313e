"""What a prompt sounds like on Asterisk: a sequence of pre-rendered sound files.

Asterisk has no text-to-speech, and its own `SAY NUMBER` is wrong in Russian (Debian's pack
lacks `digits/100`). So a prompt is cut into pieces: each literal stretch of the catalogue
text is one file, and each parameter is spoken word by word from word files (numbers through
`NumberWords`, in the form the placeholder asks for). A file's name is a hash of its text, so
the server and `meterline prompts render` agree on names without sharing any state.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from decimal import Decimal

from callflows.model import Say
from ivr.prompts import Catalogue, NumberWords, Unit, spoken_number

_WORD = re.compile(r"[0-9A-Za-zА-Яа-яЁё]+(?:[-:][0-9A-Za-zА-Яа-яЁё]+)*")
_TAG = re.compile(r"<[^>]*>")
_LETTERS = re.compile(r"[A-Za-zА-Яа-яЁё0-9]")


@dataclass(frozen=True)
class Piece:
    """One sound file of a prompt: its text, or the recorded audio it comes from."""

    text: str
    audio: str | None = None

    @property
    def name(self) -> str:
        """The file's name without folder or extension (Asterisk adds the format's)."""
        source = f"audio:{self.audio}" if self.audio else f"text:{self.text}"
        return "ml-" + hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]


def say_pieces(catalogue: Catalogue, say: Say) -> list[Piece]:
    """The sound files that speak `say`, in order; KeyError for an unknown prompt.

    As `Catalogue.render` says it: a `unit` parameter is not said itself but agrees with the
    `{value:u}` placeholders, abbreviations in text parameters are spelled out, SSML is dropped.
    """
    if not catalogue.placeholders(say.prompt):
        return literal_pieces(catalogue, say.prompt)
    params = dict(say.params)
    unit = catalogue.units.get(str(params.pop("unit", "")))
    pieces: list[Piece] = []
    for literal, name, spec in _parts(catalogue.prompts[say.prompt]["text"]):
        if literal:
            pieces.append(Piece(literal))
        if name:
            words = param_words(params[name], spec, catalogue, unit)
            pieces.extend(Piece(word) for word in words)
    return pieces


def literal_pieces(catalogue: Catalogue, key: str) -> list[Piece]:
    """The files a prompt needs whatever its parameters: its text, or its stretches of text."""
    entry = catalogue.prompts[key]
    if not catalogue.placeholders(key):
        return [Piece(_plain(entry["text"]), entry.get("audio") or None)]
    return [Piece(literal) for literal, _, _ in _parts(entry["text"]) if literal]


def placeholder_specs(catalogue: Catalogue) -> set[str]:
    """Every number form the catalogue's placeholders ask for ('' is the plain form)."""
    return {
        spec for key in catalogue.prompts for _, _, spec in _parts(catalogue.prompts[key]["text"])
    }


def _parts(text: str) -> list[tuple[str, str, str]]:
    """(literal, placeholder, spec) triples; literal stretches trimmed of edge punctuation."""
    parts = []
    for literal, name, spec, _ in string.Formatter().parse(text):
        literal = _plain(literal).strip(" ,.;:!?—-")
        parts.append((literal if _LETTERS.search(literal) else "", name or "", spec or ""))
    return parts


def _plain(text: str) -> str:
    """Text without SSML tags (espeak-ng and recordings have no use for them)."""
    return " ".join(_TAG.sub(" ", text).split())


def param_words(
    value: object, spec: str = "", catalogue: Catalogue | None = None, unit: Unit | None = None
) -> list[str]:
    """A parameter as the words it is spoken with, each one a word file."""
    if isinstance(value, bool):
        return ["да" if value else "нет"]
    if isinstance(value, int | Decimal):
        return format(NumberWords(value, unit), spec).split()
    text = catalogue.expand(str(value)) if catalogue is not None else str(value)
    words: list[str] = []
    for token in _WORD.findall(text):
        if token.isdigit():  # «4 5 6» from digits_apart: read as number words
            words.extend(spoken_number(int(token)).split())
        else:
            words.append(token.lower())
    return words

"""The prompt catalogue: every word the caller hears, in one TOML file a utility can edit.

Each prompt is a table with `text` (Python format placeholders) and an optional `audio`
URL, played instead of the text when the prompt has no parameters. An optional
`[_settings]` table may set `voice` (e.g. "Polly.Tatyana") and `language` (default ru-RU).
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from num2words import num2words

DEFAULT_CATALOGUE = Path(__file__).with_name("prompts.ru.toml")


class CatalogueError(ValueError):
    """The prompt file is malformed; the message names the prompt."""


@dataclass(frozen=True)
class Utterance:
    """One rendered prompt: text to speak, or an audio URL to play."""

    text: str
    audio: str | None = None


CASES = {
    "nom": "nominative",
    "gen": "genitive",
    "dat": "dative",
    "acc": "accusative",
    "ins": "instrumental",
    "pre": "prepositional",
}


def spoken_number(
    value: Decimal | int, gender: str = "m", case: str = "nominative", ordinal: bool = False
) -> str:
    """A number in Russian words, without a useless «целых ноль тысячных».

    >>> spoken_number(Decimal("12345.000"))
    'двенадцать тысяч триста сорок пять'
    >>> spoken_number(Decimal("123.450"))
    'сто двадцать три целых сорок пять сотых'
    >>> spoken_number(1, gender="n")
    'одно'
    >>> spoken_number(23, gender="n", case="genitive", ordinal=True)
    'двадцать третьего'
    """
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            value = int(value)
        else:
            value = Decimal(format(value.normalize(), "f"))
    if ordinal:
        return str(num2words(int(value), lang="ru", to="ordinal", case=case, gender=gender))
    return str(num2words(value, lang="ru", gender=gender, case=case))


class NumberWords:
    """A number that formats as Russian words, in the form its placeholder asks for.

    The spec is dash-separated: a gender (m, f, n), a case (nom, gen, dat, acc, ins, pre)
    and `ord` for an ordinal. `{count:n}` → «одно»; `{start:gen}` → «восьми»;
    `{first:ord-gen-n}` → «двадцать третьего»; `{count}` → masculine nominative.
    """

    def __init__(self, value: Decimal | int):
        self.value = value

    def __format__(self, spec: str) -> str:
        gender, case, ordinal = "m", "nominative", False
        for token in filter(None, spec.split("-")):
            if token in ("m", "f", "n"):
                gender = token
            elif token in CASES:
                case = CASES[token]
            elif token == "ord":
                ordinal = True
            else:
                raise ValueError(f"unknown number form {token!r}: use m/f/n, nom/gen/…, ord")
        return spoken_number(self.value, gender=gender, case=case, ordinal=ordinal)


class PlainText(str):
    """A text parameter: a number form in its placeholder («{start:gen}») does not apply."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return str(self)


class Catalogue:
    """Loaded prompts; `render` fills a prompt's placeholders."""

    def __init__(self, prompts: dict[str, dict[str, str]], voice: str | None, language: str):
        self.prompts = prompts
        self.voice = voice
        self.language = language

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        """Read and check a catalogue file (default: the Russian one shipped with meterline)."""
        path = path or DEFAULT_CATALOGUE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError(f"{path}: {exc}") from None
        settings = data.pop("_settings", {})
        prompts: dict[str, dict[str, str]] = {}
        for key, entry in data.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise CatalogueError(f'{path}: prompt [{key}] needs a text = "…" line')
            prompts[key] = {k: str(v) for k, v in entry.items()}
        return cls(prompts, settings.get("voice") or None, settings.get("language", "ru-RU"))

    def problems_against(self, reference: Catalogue) -> list[str]:
        """What would break at run time: prompts missing here, or placeholders nobody fills."""
        problems = []
        for key in sorted(reference.prompts):
            if key not in self.prompts:
                problems.append(f"prompt [{key}] is missing")
            elif problem := self._unrenderable(key):
                problems.append(f"prompt [{key}]: {problem}")
            elif extra := self.placeholders(key) - reference.placeholders(key):
                names = ", ".join("{" + name + "}" for name in sorted(extra))
                allowed = ", ".join("{" + n + "}" for n in sorted(reference.placeholders(key)))
                problems.append(
                    f"prompt [{key}] uses {names}; it may use only: {allowed or 'none'}"
                )
        return problems

    def _unrenderable(self, key: str) -> str | None:
        try:
            self.prompts[key]["text"].format(**{n: NumberWords(1) for n in self.placeholders(key)})
        except (ValueError, IndexError, KeyError) as exc:
            return str(exc) or type(exc).__name__
        return None

    def placeholders(self, key: str) -> set[str]:
        """The names a prompt's text expects."""
        text = self.prompts[key]["text"]
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    def render(self, key: str, params: dict[str, object] | None = None) -> Utterance:
        """The prompt's words with its parameters filled in; KeyError for an unknown prompt."""
        entry = self.prompts[key]
        params = params or {}
        if not params and entry.get("audio"):
            return Utterance(text=entry["text"], audio=entry["audio"])
        words = {name: _as_words(value) for name, value in params.items()}
        return Utterance(text=entry["text"].format(**words))


def _as_words(value: object) -> object:
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, int | Decimal):
        return NumberWords(value)
    return PlainText(value)


def load_checked(path: Path | None) -> Catalogue:
    """The configured catalogue, checked against the shipped one; CatalogueError if unusable."""
    catalogue = Catalogue.load(path)
    if path is not None:
        problems = catalogue.problems_against(Catalogue.load(DEFAULT_CATALOGUE))
        if problems:
            raise CatalogueError(f"{path}: " + "; ".join(problems))
    return catalogue

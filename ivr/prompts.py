"""The prompt catalogue: every word the caller hears, in one TOML file a utility can edit.

Each prompt is a table with `text` (Python format placeholders) and an optional `audio`
URL, played instead of the text when the prompt has no parameters. An optional
`[_settings]` table may set `voice` (e.g. "Polly.Tatyana") and `language` (default ru-RU);
`[_units]` gives each unit's noun forms, `[_abbreviations]` what address abbreviations are
spoken as. Prompt text may carry SSML tags, sent to voices that read them.
"""

from __future__ import annotations

import functools
import re
import string
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from babel import Locale
from num2words import num2words

DEFAULT_CATALOGUE = Path(__file__).with_name("prompts.ru.toml")
_RUSSIAN = Locale("ru")


class CatalogueError(ValueError):
    """The prompt file is malformed; the message names the prompt."""


@dataclass(frozen=True)
class Utterance:
    """One rendered prompt: text to speak, or an audio URL to play."""

    text: str  # the words, without markup (also for the call's timeline)
    audio: str | None = None
    ssml: str | None = None  # the text with its SSML markup, when the voice reads SSML


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


@dataclass(frozen=True)
class Unit:
    """A unit's noun forms for one, few and many («кубометр», «кубометра», «кубометров»)."""

    forms: tuple[str, str, str]
    gender: str = "m"


def agreeing(value: Decimal | int, forms: tuple[str, str, str] | list[str]) -> str:
    """The noun form that agrees with a number, by the CLDR Russian plural rules (Babel).

    >>> agreeing(3, ("показание", "показания", "показаний"))
    'показания'
    >>> agreeing(Decimal("2.5"), ("кубометр", "кубометра", "кубометров"))
    'кубометра'
    """
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    form = _RUSSIAN.plural_form(value)
    # A fraction takes the genitive singular: «две целых пять десятых кубометра».
    return forms[{"one": 0, "few": 1, "many": 2}.get(form, 1)]


class NumberWords:
    """A number that formats as Russian words, in the form its placeholder asks for.

    The spec is dash-separated: a gender (m, f, n), a case (nom, gen, dat, acc, ins, pre),
    `ord` for an ordinal, `u` to add the prompt's unit; then optionally `|one|few|many` noun
    forms. `{count:n}` → «одно»; `{start:gen}` → «восьми»; `{first:ord-gen-n}` → «двадцать
    третьего»; `{count:n|показание|показания|показаний}` → «три показания»; `{value:u}` →
    «сто тридцать кубометров».
    """

    def __init__(self, value: Decimal | int, unit: Unit | None = None):
        self.value = value
        self.unit = unit

    def __format__(self, spec: str) -> str:
        return _number_words(self.value, self.unit, spec)


# The same few numbers come back in every call (meter counts and ordinals, a value read back
# and then named in the summary), and num2words takes 5-15 µs for each: a bounded cache of
# the words, keyed on the value's type too. Values equal across types or exponents (1 and
# Decimal("1"), Decimal("2.5") and Decimal("2.50")) have the same words anyway: both are
# normalised before they are spoken or agreed with.
@functools.lru_cache(maxsize=4096, typed=True)
def _number_words(value: Decimal | int, unit: Unit | None, spec: str) -> str:
    spec, *nouns = spec.split("|")
    if nouns and len(nouns) != 3:
        raise ValueError(f"noun forms after a number: give three (one|few|many), not {nouns}")
    gender, case, ordinal, with_unit = None, "nominative", False, False
    for token in filter(None, spec.split("-")):
        if token in ("m", "f", "n"):
            gender = token
        elif token in CASES:
            case = CASES[token]
        elif token == "ord":
            ordinal = True
        elif token == "u":
            with_unit = True
        else:
            raise ValueError(f"unknown number form {token!r}: use m/f/n, nom/gen/…, ord, u")
    unit = unit if with_unit else None
    gender = gender or (unit.gender if unit else "m")
    words = spoken_number(value, gender=gender, case=case, ordinal=ordinal)
    if nouns:
        words = f"{words} {agreeing(value, nouns)}"
    if unit is not None:
        words = f"{words} {agreeing(value, unit.forms)}"
    return words


class PlainText(str):
    """A text parameter: a number form in its placeholder («{start:gen}») does not apply."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return str(self)


class Catalogue:
    """Loaded prompts; `render` fills a prompt's placeholders."""

    def __init__(
        self,
        prompts: dict[str, dict[str, str]],
        voice: str | None,
        language: str,
        units: dict[str, Unit] | None = None,
        abbreviations: dict[str, str] | None = None,
    ):
        self.prompts = prompts
        self.voice = voice
        self.language = language
        self.units = units or {}
        self.abbreviations = abbreviations or {}
        names = sorted(self.abbreviations, key=len, reverse=True)
        # Whole words only: «д.» is «дом», but «Вологда.» stays as it is.
        self._abbreviated = (
            re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")(?=\s|$|,)")
            if names
            else None
        )

    @property
    def ssml(self) -> bool:
        """Whether the voice reads SSML markup (Amazon Polly and Google voices on Twilio)."""
        return bool(self.voice) and str(self.voice).split(".")[0] in SSML_VOICES

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        """Read and check a catalogue file (default: the Russian one shipped with meterline)."""
        path = path or DEFAULT_CATALOGUE
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError(f"{path}: {exc}") from None
        settings = data.pop("_settings", {})
        units = {name: _unit(path, name, entry) for name, entry in data.pop("_units", {}).items()}
        abbreviations = {str(k): str(v) for k, v in data.pop("_abbreviations", {}).items()}
        prompts: dict[str, dict[str, str]] = {}
        for key, entry in data.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise CatalogueError(f'{path}: prompt [{key}] needs a text = "…" line')
            prompts[key] = {k: str(v) for k, v in entry.items()}
        voice = settings.get("voice") or None
        return cls(prompts, voice, settings.get("language", "ru-RU"), units, abbreviations)

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
            text = self.prompts[key]["text"]
            _plain(text.format(**{n: NumberWords(1) for n in self.placeholders(key)}))
        except (ValueError, IndexError, KeyError, ET.ParseError) as exc:
            return str(exc) or type(exc).__name__
        return None

    def placeholders(self, key: str) -> set[str]:
        """The names a prompt's text expects."""
        text = self.prompts[key]["text"]
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    def render(self, key: str, params: dict[str, object] | None = None) -> Utterance:
        """The prompt's words with its parameters filled in; KeyError for an unknown prompt.

        A `unit` parameter is not said by itself: `{value:u}` placeholders agree with it.
        """
        entry = self.prompts[key]
        params = dict(params or {})
        if not params and entry.get("audio"):
            return Utterance(text=entry["text"], audio=entry["audio"])
        unit = self.units.get(str(params.pop("unit", "")))
        marked = "<" in entry["text"]
        words = {name: self._as_words(value, unit, marked) for name, value in params.items()}
        # A sentence may open with a placeholder («{number:ord} счётчик»): capitalise it.
        filled = _capitalised(entry["text"].format(**words))
        if not marked:
            return Utterance(text=filled)
        return Utterance(text=_plain(filled), ssml=filled if self.ssml else None)

    def _as_words(self, value: object, unit: Unit | None, marked: bool) -> object:
        if isinstance(value, bool):
            return "да" if value else "нет"
        if isinstance(value, int | Decimal):
            return NumberWords(value, unit)
        text = self.expand(str(value))
        return PlainText(escape(text) if marked else text)

    def expand(self, text: str) -> str:
        """A text parameter with its abbreviations spelled out («ул.» → «улица»)."""
        if self._abbreviated is None:
            return text
        return self._abbreviated.sub(lambda m: self.abbreviations[m.group(1)], text)


# Twilio voices that read SSML inside <Say>; its basic voices (man, woman, alice) do not.
SSML_VOICES = {"Polly", "Google"}


def _unit(path: Path, name: str, entry: object) -> Unit:
    forms = entry.get("forms") if isinstance(entry, dict) else None
    gender = entry.get("gender", "m") if isinstance(entry, dict) else None
    if not (isinstance(forms, list) and len(forms) == 3 and all(isinstance(f, str) for f in forms)):
        raise CatalogueError(f'{path}: unit [{name}] needs forms = ["один", "два", "пять"]')
    if gender not in ("m", "f", "n"):
        raise CatalogueError(f"{path}: unit [{name}]: gender must be m, f or n")
    return Unit((forms[0], forms[1], forms[2]), gender)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def _plain(markup: str) -> str:
    """The words of a prompt without its SSML tags; ET.ParseError if the markup is broken."""
    if "<" not in markup:
        return markup
    root = ET.fromstring(f"<speak>{markup}</speak>")
    return re.sub(r"\s+", " ", "".join(root.itertext())).strip()


def load_checked(path: Path | None) -> Catalogue:
    """The configured catalogue, checked against the shipped one; CatalogueError if unusable."""
    catalogue = Catalogue.load(path)
    if path is not None:
        problems = catalogue.problems_against(Catalogue.load(DEFAULT_CATALOGUE))
        if problems:
            raise CatalogueError(f"{path}: " + "; ".join(problems))
    return catalogue

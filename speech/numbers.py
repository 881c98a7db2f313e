"""Russian number words to exact decimals, control words to answers, and numbers back to words.

The parser is strict on purpose: a meter reading that is half heard must come back as "not
understood" (None) so the line asks again, never as a guess that gets read back and confirmed
by a caller who was not listening closely.

Forms understood (fillers such as «ну», «показание», «кубов» are ignored anywhere):

- whole numbers up to a billion: «сто двадцать три», «две тысячи пять», «полторы тысячи»;
- digit by digit, leading zeros kept in `digits`: «ноль ноль четыре пять шесть» -> 456 ("00456");
- zeros, then one compound number, as registers are read: «ноль ноль сто двадцать три» -> 123;
- fractions: «… целых пять десятых», «… и пять десятых», «… запятая ноль пять», «… с половиной».

Mixing digit-by-digit words with compound numbers («сто двадцать три пять», «двенадцать
тридцать четыре») is ambiguous (1235? 123,5? a missed «запятая»?) and returns None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from num2words import num2words

from speech.vocabulary import (
    AND,
    ANSWER_FILLERS,
    ANSWERS,
    DENOMINATORS,
    FILLERS,
    HALF_SUFFIX,
    HALF_THOUSAND,
    HUNDREDS,
    INTEGER_MARKERS,
    NEGATION,
    ONE_AND_HALF,
    POINTS,
    SCALES,
    TEENS,
    TENS,
    UNITS,
    tokenize,
)

MAX_VALUE = 10**9
UNKNOWN = "[unk]"  # what Vosk writes for a sound outside its grammar
_NUMERIC = re.compile(r"\s*(\d{1,10})(?:[.,](\d{1,6}))?\s*")


@dataclass(frozen=True)
class ParsedNumber:
    """A value as understood, with its digits as spoken (for register-length checks)."""

    value: Decimal
    digits: str  # the integer part as spoken, leading zeros kept: "00456"; "" when not said
    decimals: str  # the fractional digits as spoken: "05" for «ноль пять сотых»; "" if none


def parse_number(text: str) -> Decimal | None:
    """The exact value of a spoken number, or None when it is not clearly one number.

    >>> parse_number("сто двадцать три и пять десятых")
    Decimal('123.5')
    >>> parse_number("сто двадцать три пять") is None
    True
    """
    parsed = parse_number_detail(text)
    return parsed.value if parsed else None


def parse_number_detail(text: str) -> ParsedNumber | None:
    """Like `parse_number`, keeping the digit strings as spoken."""
    m = _NUMERIC.fullmatch(text)
    if m:
        return _make(m[1], m[2] or "")
    tokens = [t for t in tokenize(text) if t not in FILLERS or t == UNKNOWN]
    while tokens and tokens[0] == UNKNOWN:
        tokens.pop(0)
    while tokens and tokens[-1] == UNKNOWN:
        tokens.pop()
    # Vosk's [unk] inside a number hides a word we did not hear: «сто [unk] три» is not 103.
    if not tokens or any(not t.isalpha() for t in tokens):
        return None
    return _parse_tokens(tokens)


def _parse_tokens(tokens: list[str]) -> ParsedNumber | None:
    if len(tokens) == 1 and tokens[0] in ONE_AND_HALF:
        return _make("1", "5")
    if tuple(tokens[-2:]) == HALF_SUFFIX:
        digits = _integer(tokens[:-2])
        return _make(digits, "5") if digits is not None else None
    for separators, need_denominator in ((INTEGER_MARKERS, False), (POINTS, False), ({AND}, True)):
        at = [i for i, t in enumerate(tokens) if t in separators]
        if len(at) > 1:
            return None
        if at:
            rest = tokens[at[0] + 1 :]
            if rest[:1] == [AND] and not need_denominator:
                rest = rest[1:]  # «одна целая и пять десятых»
            digits = _integer(tokens[: at[0]])
            decimals = _fraction(rest, need_denominator)
            if digits is None or decimals is None:
                return None
            return _make(digits, decimals)
    if tokens[-1] in DENOMINATORS:
        decimals = _fraction(tokens, need_denominator=True)
        return _make("", decimals) if decimals is not None else None
    digits = _integer(tokens)
    return _make(digits, "") if digits is not None else None


def _make(digits: str, decimals: str) -> ParsedNumber | None:
    value = Decimal(int(digits or "0"))
    if decimals:
        value += Decimal(int(decimals)).scaleb(-len(decimals))
    if value > MAX_VALUE:
        return None
    return ParsedNumber(value=value, digits=digits, decimals=decimals)


def _integer(tokens: list[str]) -> str | None:
    """The digit string of an integer part: digit by digit, or zeros then one compound number."""
    if not tokens:
        return None
    if len(tokens) > 1 and all(t in UNITS for t in tokens):
        return "".join(str(UNITS[t]) for t in tokens)
    zeros = 0
    while zeros < len(tokens) and UNITS.get(tokens[zeros]) == 0:
        zeros += 1
    if zeros == len(tokens):
        return "0" * zeros
    value = _compound(tokens[zeros:])
    return None if value is None else "0" * zeros + str(value)


def _fraction(tokens: list[str], need_denominator: bool) -> str | None:
    """The fractional digits: «пять сотых» -> "05"; «ноль пять» after «запятая» -> "05"."""
    if tokens and tokens[-1] in DENOMINATORS:
        places = DENOMINATORS[tokens[-1]]
        digits = _integer(tokens[:-1])
        if digits is None or len(str(int(digits))) > places:
            return None
        return str(int(digits)).zfill(places)
    if need_denominator:
        return None
    return _integer(tokens)


def _compound(tokens: list[str]) -> int | None:
    """A number said the usual way, «две тысячи сто пять»; None on any out-of-order word."""
    total = group = stage = 0  # stage: 0 nothing yet, 1 hundreds, 2 tens, 3 units or teens
    last_scale = MAX_VALUE * 10
    limit: tuple[int, int] | None = None  # after «полторы тысячи»: (total then, max rest)
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in HUNDREDS and stage < 1:
            group, stage = group + HUNDREDS[t], 1
        elif t in TENS and stage < 2:
            group, stage = group + TENS[t], 2
        elif t in TEENS and stage < 2:
            group, stage = group + TEENS[t], 3
        elif t in UNITS and stage < 3 and UNITS[t] > 0:
            group, stage = group + UNITS[t], 3
        elif t in SCALES and SCALES[t] < last_scale:
            total += (group if stage else 1) * SCALES[t]
            group, stage, last_scale = 0, 0, SCALES[t]
        elif t in ONE_AND_HALF and stage == 0 and i + 1 < len(tokens):
            scale = SCALES.get(tokens[i + 1], 0)
            if not 0 < scale < last_scale:
                return None
            total += scale * 3 // 2
            last_scale, limit = scale, (total, scale // 2)
            i += 1
        elif t == HALF_THOUSAND and stage == 0 and last_scale > 1000:
            total += 500
            last_scale, limit = 1000, (total, 500)
        else:
            return None
        i += 1
    total += group
    if limit and total - limit[0] >= limit[1]:
        return None
    return total if total <= MAX_VALUE else None


def parse_answer(text: str) -> str | None:
    """'yes', 'no', 'repeat' or 'operator' when the text says only that; otherwise None.

    >>> parse_answer("да, всё верно"), parse_answer("не правильно"), parse_answer("да нет")
    ('yes', 'no', None)
    """
    tokens = tokenize(text)
    tokens = ["повтори" if t == "еще" and nxt == "раз" else t for t, nxt in _pairs(tokens)]
    tokens = [t for t in tokens if t not in FILLERS and t not in ANSWER_FILLERS]
    answers: set[str] = set()
    negate = False
    for t in tokens:
        if t == NEGATION:
            negate = True
            continue
        answer = ANSWERS.get(t)
        if answer is None or (negate and answer != "yes"):
            return None
        answers.add("no" if negate else answer)
        negate = False
    if negate or len(answers) != 1:
        return None
    return answers.pop()


def _pairs(tokens: list[str]) -> list[tuple[str, str]]:
    return list(zip(tokens, [*tokens[1:], ""], strict=False))


def to_words(value: Decimal | int) -> str:
    """A value as Russian words; whole values without «целых», trailing zeros dropped.

    >>> to_words(Decimal("120.50"))
    'сто двадцать целых пять десятых'
    """
    d = Decimal(value)
    if not d.is_finite() or d < 0:
        raise ValueError(f"cannot speak {value!r}")
    if d == d.to_integral_value():
        return str(num2words(int(d), lang="ru"))
    return str(num2words(d.normalize(), lang="ru"))

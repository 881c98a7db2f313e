"""The Russian words the line listens for: numbers, control words, fillers, and the grammar."""

from __future__ import annotations

import re

UNITS: dict[str, int] = {
    "ноль": 0,
    "нуль": 0,
    "один": 1,
    "одна": 1,
    "одно": 1,
    "одну": 1,
    "два": 2,
    "две": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
    "девять": 9,
}
TEENS: dict[str, int] = {
    "десять": 10,
    "одиннадцать": 11,
    "двенадцать": 12,
    "тринадцать": 13,
    "четырнадцать": 14,
    "пятнадцать": 15,
    "шестнадцать": 16,
    "семнадцать": 17,
    "восемнадцать": 18,
    "девятнадцать": 19,
}
TENS: dict[str, int] = {
    "двадцать": 20,
    "тридцать": 30,
    "сорок": 40,
    "пятьдесят": 50,
    "шестьдесят": 60,
    "семьдесят": 70,
    "восемьдесят": 80,
    "девяносто": 90,
}
HUNDREDS: dict[str, int] = {
    "сто": 100,
    "двести": 200,
    "триста": 300,
    "четыреста": 400,
    "пятьсот": 500,
    "шестьсот": 600,
    "семьсот": 700,
    "восемьсот": 800,
    "девятьсот": 900,
    "полтораста": 150,
}
SCALES: dict[str, int] = {
    "тысяча": 10**3,
    "тысячи": 10**3,
    "тысяч": 10**3,
    "тысячу": 10**3,
    "миллион": 10**6,
    "миллиона": 10**6,
    "миллионов": 10**6,
    "миллиард": 10**9,
    "миллиарда": 10**9,
    "миллиардов": 10**9,
}
# «полторы тысячи», «полтора миллиона»; alone, «полтора (куба)» is 1.5.
ONE_AND_HALF = frozenset({"полтора", "полторы"})
HALF_THOUSAND = "полтысячи"
# The number of decimal places each fraction word names: «пять сотых» is 0.05.
DENOMINATORS: dict[str, int] = {
    **dict.fromkeys(("десятая", "десятых", "десятые", "десятую"), 1),
    **dict.fromkeys(("сотая", "сотых", "сотые", "сотую"), 2),
    **dict.fromkeys(("тысячная", "тысячных", "тысячные", "тысячную"), 3),
    **dict.fromkeys(("десятитысячная", "десятитысячных"), 4),
}
INTEGER_MARKERS = frozenset({"целых", "целая", "целые", "целой", "целую"})
POINTS = frozenset({"запятая", "запятой", "точка"})
AND = "и"
HALF_SUFFIX = ("с", "половиной")

# Words callers put around a value that carry no number: hesitations, units, "the reading is".
FILLERS = frozenset(
    """ну э ээ эээ эм мм хм а это вот так значит сейчас у меня мой мое наш
    показание показания показаний показанием счетчик счетчика счетчике на по
    куб куба кубов кубометр кубометра кубометров кубический кубических метр метра метров
    гигакалория гигакалории гигакалорий гкал киловатт пожалуйста равно примерно
    [unk]""".split()
)

ANSWERS: dict[str, str] = {
    "да": "yes",
    "верно": "yes",
    "правильно": "yes",
    "подтверждаю": "yes",
    "точно": "yes",
    "нет": "no",
    "неверно": "no",
    "неправильно": "no",
    "ошибка": "no",
    "повтори": "repeat",
    "повторить": "repeat",
    "повторите": "repeat",
    "оператор": "operator",
    "оператора": "operator",
    "оператору": "operator",
}
NEGATION = "не"
# «не верно» is as common in transcripts as «неверно»; «не» flips yes to no.
ANSWER_FILLERS = frozenset(
    {"все", "всё", "еще", "ещё", "раз", "пожалуйста", "мне", "нужен", "дайте"}
)

# What the recognizer is allowed to hear in grammar mode (Vosk adds nothing else but [unk]).
GRAMMAR_WORDS: list[str] = sorted(
    {
        *UNITS,
        *TEENS,
        *TENS,
        *HUNDREDS,
        *SCALES,
        *ONE_AND_HALF,
        HALF_THOUSAND,
        *DENOMINATORS,
        *INTEGER_MARKERS,
        *POINTS,
        AND,
        *HALF_SUFFIX,
        *ANSWERS,
        NEGATION,
        "ну",
        "это",
        "кубов",
        "кубометров",
        "гигакалорий",
        "показание",
    }
    - {"нуль", "одно", "одну", "десятитысячная", "десятитысячных"}
)

_SPLIT = re.compile(r"[^0-9a-zа-я\[\]]+")


def tokenize(text: str) -> list[str]:
    """Lower-case words, ё read as е, punctuation and hyphens as spaces.

    >>> tokenize("Сто двадцать-три, ЕЩЁ")
    ['сто', 'двадцать', 'три', 'еще']
    """
    text = text.lower().replace("ё", "е")
    return [t for t in _SPLIT.split(text) if t]

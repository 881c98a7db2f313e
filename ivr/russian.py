"""Russian numbers for people: one formatter for every screen and message, and plural forms.

Babel (CLDR data) does both, so the operator view, the simulator and the CLI agree; it is
imported inside the functions, so `meterline --help` does not pay for it.
"""

from __future__ import annotations

from decimal import Decimal


def number(value: Decimal | float | int | None) -> str:
    """A number as Russians write it: decimal comma, thin groups, never rounded or in exponent form.

    >>> number(Decimal("130.500")), number(Decimal("12345.6")), number(5.956), number(None)
    ('130,5', '12\\xa0345,6', '5,956', '—')
    """
    if value is None:
        return "—"
    from babel.numbers import format_decimal

    exact = Decimal(str(value)).normalize()
    return str(format_decimal(exact, locale="ru", decimal_quantization=False))


def plural(count: int, one: str, few: str, many: str) -> str:
    """`count` with the right form of its noun: 1 запрос, 2 запроса, 5 запросов, 21 запрос.

    >>> [plural(n, "запрос", "запроса", "запросов") for n in (1, 2, 5, 11, 21, 112)]
    ['1 запрос', '2 запроса', '5 запросов', '11 запросов', '21 запрос', '112 запросов']
    """
    from babel import Locale

    form = Locale("ru").plural_form(count)
    word = {"one": one, "few": few}.get(form, many)
    return f"{count} {word}"

"""Russian numbers and plural forms: the one formatter every screen and message uses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ivr.billing.fields import RowError, kind
from ivr.russian import number, plural


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("163.9"), "163,9"),
        (Decimal("5.956"), "5,956"),
        (Decimal("25.11"), "25,11"),
        (Decimal("130.500"), "130,5"),
        (Decimal("12345.6789"), "12\xa0345,6789"),
        (Decimal("1E+3"), "1\xa0000"),
        (Decimal("0.0001"), "0,0001"),
        (Decimal("0"), "0"),
        (7, "7"),
        (None, "—"),
    ],
)
def test_numbers_have_a_decimal_comma_and_are_never_rounded(
    value: Decimal | int | None, shown: str
) -> None:
    assert number(value) == shown


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0 запросов"), (1, "1 запрос"), (2, "2 запроса"), (4, "4 запроса"), (5, "5 запросов"),
     (11, "11 запросов"), (14, "14 запросов"), (21, "21 запрос"), (22, "22 запроса"),
     (111, "111 запросов")],
)  # fmt: skip
def test_plural_forms_follow_russian_rules(count: int, shown: str) -> None:
    assert plural(count, "запрос", "запроса", "запросов") == shown


def test_an_unknown_meter_kind_lists_the_russian_words_too() -> None:
    with pytest.raises(RowError) as refused:
        kind("газ")
    message = str(refused.value)
    assert "hot_water, cold_water, heat" in message
    assert "гвс" in message and "отопление" in message and "холодная вода" in message

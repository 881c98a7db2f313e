"""What the operator view writes: Russian words for codes, Russian numbers inside stored text."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from ivr.operator.labels import call_modes, period_words, prose, reading_mode
from ivr.operator.queue import queue_filter, shown_day

ZONE = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("расход 163.9 при пределе 5.956", "расход 163,9 при пределе 5,956"),
        ("меньше предыдущего 25.11 — переспросили", "меньше предыдущего 25,11 — переспросили"),
        ("сохранено показание 12345.678 (принято)", "сохранено показание 12\xa0345,678 (принято)"),
        ("поверка до 23.03.2026", "поверка до 23.03.2026"),
        ("в 10:15, 3 попытки", "в 10:15, 3 попытки"),
        ("", ""),
    ],
)
def test_decimals_in_stored_text_are_shown_with_a_comma_and_dates_are_left_alone(
    stored: str, shown: str
) -> None:
    assert prose(stored) == shown


@pytest.mark.parametrize(
    ("modes", "shown"),
    [
        ("keypad", "Клавиатура"),
        ("speech", "Речь"),
        ("keypad,speech", "Клавиатура и речь"),
        ("—", "Без ввода показаний"),
        (None, "Без ввода показаний"),
    ],
)
def test_call_input_modes_read_as_one_consistent_phrase(modes: str | None, shown: str) -> None:
    assert call_modes(modes) == shown


def test_a_reading_without_a_mode_says_so() -> None:
    assert reading_mode("—") == "Способ не записан" and reading_mode("keypad") == "Клавиатура"


@pytest.mark.parametrize(
    ("period", "shown"), [("2026-03", "март 2026"), ("2026-11", "ноябрь 2026"), ("junk", "junk")]
)
def test_periods_are_named_by_their_month(period: str, shown: str) -> None:
    assert period_words(period) == shown


@pytest.mark.parametrize("raw", ["23.03.2026", "2026-03-23", "1.3.2026"])
def test_the_queue_takes_dates_as_operators_type_them_and_as_links_carry_them(raw: str) -> None:
    chosen = queue_filter({"from": raw, "to": raw}, ZONE, "8172")
    assert chosen.since is not None and chosen.since.tzinfo is not None
    day = chosen.since.astimezone(ZONE).date()
    assert (day.month, day.year) == (3, 2026)
    assert shown_day(raw) in ("23.03.2026", "01.03.2026")


def test_an_unreadable_date_is_ignored_and_shown_as_typed() -> None:
    assert queue_filter({"from": "32.13.2026"}, ZONE, "8172").since is None
    assert shown_day("32.13.2026") == "32.13.2026"

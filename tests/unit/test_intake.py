"""Intake rules, table by table: keypad parsing, register digits, history, rollover, window."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callflows.intake import (
    check_reading,
    fits_register,
    in_operator_hours,
    in_window,
    meter_in_service,
    monthly_limit,
    months_between,
    parse_keyed,
)
from callflows.model import MeterInfo, PastReading, Thresholds

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
D = Decimal


def monthly_history(*values: str, last: datetime = NOW - timedelta(days=30)) -> tuple:
    """Readings a month apart, the last one at `last`."""
    count = len(values)
    return tuple(
        PastReading(D(v), last - timedelta(days=30 * (count - 1 - i))) for i, v in enumerate(values)
    )


def meter(
    *values: str,
    kind: str = "hot_water",
    integer_digits: int = 5,
    decimal_digits: int = 3,
    **kwargs: object,
) -> MeterInfo:
    return MeterInfo(
        id=1,
        serial="SN123456",
        kind=kind,  # type: ignore[arg-type]
        unit="m3",
        integer_digits=integer_digits,
        decimal_digits=decimal_digits,
        history=monthly_history(*values),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("keyed", "expected"),
    [
        ("12345*67", D("12345.67")),
        ("00456", D("456")),
        ("0", D("0")),
        ("000", D("0")),
        ("0*5", D("0.5")),
        ("12*", D("12")),
        ("12*0", D("12.0")),
        ("7", D("7")),
    ],
)
def test_it_parses_keyed_values(keyed: str, expected: Decimal) -> None:
    assert parse_keyed(keyed) == expected


@pytest.mark.parametrize(
    "keyed", ["", "*", "**", "*5", "1**2", "1*2*3", "12a", "12.5", "12,5", "#", "12#", " 12", "-5"]
)
def test_it_rejects_unusable_keyed_values(keyed: str) -> None:
    assert parse_keyed(keyed) is None


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=999))
def test_keyed_values_round_trip(whole: int, fraction: int) -> None:
    keyed = f"{whole}*{fraction:03d}"
    assert parse_keyed(keyed) == D(f"{whole}.{fraction:03d}")


@given(st.text(alphabet="0123456789*#abc ", max_size=12))
def test_parse_keyed_never_raises(keyed: str) -> None:
    value = parse_keyed(keyed)
    assert value is None or value >= 0


@pytest.mark.parametrize(
    ("active", "due", "expected"),
    [
        (True, None, "ok"),
        (True, date(2026, 11, 24), "ok"),
        (True, date(2026, 11, 25), "ok"),
        (True, date(2026, 11, 23), "overdue"),
        (False, None, "inactive"),
        (False, date(2020, 1, 1), "inactive"),
    ],
)
def test_meter_in_service(active: bool, due: date | None, expected: str) -> None:
    m = meter(active=active, verification_due=due)
    assert meter_in_service(m, date(2026, 11, 24)) == expected


@pytest.mark.parametrize(
    ("value", "integer_digits", "decimal_digits", "fits"),
    [
        ("99999", 5, 0, True),
        ("100000", 5, 0, False),
        ("12.5", 5, 0, False),
        ("12.0", 5, 0, True),  # a keyed trailing zero is no extra digit
        ("12.345", 5, 3, True),
        ("12.3456", 5, 3, False),
        ("0", 1, 0, True),
        ("-1", 5, 3, False),
    ],
)
def test_register_digits(value: str, integer_digits: int, decimal_digits: int, fits: bool) -> None:
    m = meter(integer_digits=integer_digits, decimal_digits=decimal_digits)
    assert fits_register(m, D(value)) is fits


def test_too_many_digits_comes_before_every_other_rule() -> None:
    m = meter("500", integer_digits=3, decimal_digits=0)
    assert check_reading(m, D("1000"), NOW, Thresholds()).outcome == "too_many_digits"
    assert check_reading(m, D("10.5"), NOW, Thresholds()).outcome == "too_many_digits"


def test_without_history_only_the_digits_are_checked() -> None:
    verdict = check_reading(meter(), D("99999"), NOW, Thresholds())
    assert verdict.outcome == "ok"
    assert verdict.previous is None and verdict.limit is None


@pytest.mark.parametrize(
    ("history", "value", "outcome"),
    [
        (("100",), "99.999", "below_previous"),
        (("100",), "100", "ok"),
        (("100",), "101", "ok"),
        (("100", "110", "120", "130"), "129", "below_previous"),
    ],
)
def test_below_previous(history: tuple[str, ...], value: str, outcome: str) -> None:
    verdict = check_reading(meter(*history), D(value), NOW, Thresholds())
    assert verdict.outcome == outcome
    assert verdict.previous == D(history[-1])


@pytest.mark.parametrize(
    ("previous", "value", "outcome", "consumption"),
    [
        ("99990", "5", "ok", D("15")),  # near the top, small new value: rollover
        ("90000", "5", "anomalous", D("10005")),  # exactly at the margin still rolls over
        ("89999", "5", "below_previous", None),  # not near the top
        ("99990", "10000", "below_previous", None),  # new value not small
        ("99990", "9999.999", "anomalous", D("10009.999")),  # a rollover, but huge consumption
    ],
)
def test_rollover_near_capacity(
    previous: str, value: str, outcome: str, consumption: Decimal | None
) -> None:
    verdict = check_reading(meter(previous), D(value), NOW, Thresholds())
    assert verdict.outcome == outcome
    assert verdict.consumption == consumption
    assert verdict.rollover is (consumption is not None)


@pytest.mark.parametrize(
    ("kind", "previous", "value", "outcome"),
    [
        ("hot_water", "100", "129", "ok"),  # 29 in a month, cap 30
        ("hot_water", "100", "131", "anomalous"),
        ("heat", "10", "14.9", "ok"),  # cap 5
        ("heat", "10", "15.5", "anomalous"),
        ("cold_water", "0", "29.5", "ok"),
    ],
)
def test_short_history_uses_the_cap_per_kind(
    kind: str, previous: str, value: str, outcome: str
) -> None:
    m = meter(previous, kind=kind)
    monthly = (NOW - m.history[-1].taken_at).days / 30.44
    verdict = check_reading(m, D(value), NOW, Thresholds())
    assert verdict.outcome == outcome
    assert verdict.limit == Thresholds().monthly_cap[kind]
    assert abs(float(verdict.monthly or 0) - float(D(value) - D(previous)) / monthly) < 0.01


def test_long_history_uses_k_times_the_average() -> None:
    m = meter("100", "104", "108", "112")  # 4 per 30 days
    thresholds = Thresholds()
    limit = monthly_limit(m, thresholds)
    assert limit is not None
    assert abs(float(limit) - 3 * 4 * 30.44 / 30) < 0.001
    assert check_reading(m, D("124"), NOW, thresholds).outcome == "ok"
    assert check_reading(m, D("126"), NOW, thresholds).outcome == "anomalous"


def test_the_limit_never_drops_below_a_tenth_of_the_cap() -> None:
    m = meter("100", "100", "100", "100")  # a meter that stood still
    assert monthly_limit(m, Thresholds()) == D(3)  # 30 / 10
    assert check_reading(m, D("102"), NOW, Thresholds()).outcome == "ok"
    assert check_reading(m, D("104"), NOW, Thresholds()).outcome == "anomalous"


def test_the_average_counts_a_rollover_in_history() -> None:
    m = meter("99990", "99995", "0", "5")  # 5 a month across the top
    limit = monthly_limit(m, Thresholds())
    assert limit is not None and abs(float(limit) - 15 * 30.44 / 30) < 0.001


def test_min_history_is_configurable() -> None:
    m = meter("100", "104")
    assert monthly_limit(m, Thresholds(min_history_months=1)) != D(30)
    assert monthly_limit(m, Thresholds(min_history_months=3)) == D(30)


def test_a_kind_without_a_cap_and_short_history_is_never_anomalous() -> None:
    m = meter("100")
    assert check_reading(m, D("99999"), NOW, Thresholds(monthly_cap={})).outcome == "ok"


def test_a_reading_days_after_the_previous_counts_at_least_half_a_month() -> None:
    m = MeterInfo(
        1, "S1", "hot_water", "m3", 5, 3, history=(PastReading(D(100), NOW - timedelta(days=2)),)
    )
    verdict = check_reading(m, D(114), NOW, Thresholds())
    assert verdict.monthly == D(28) and verdict.outcome == "ok"


def test_naive_history_dates_are_taken_as_utc() -> None:
    naive = datetime(2026, 10, 25, 10, 0)
    assert months_between(naive, NOW) == months_between(naive.replace(tzinfo=UTC), NOW)


def test_verdict_figures_explain_the_decision() -> None:
    verdict = check_reading(meter("100"), D("190"), NOW, Thresholds())
    assert verdict.outcome == "anomalous"
    assert verdict.previous == D(100) and verdict.consumption == D(90)
    assert verdict.limit == D(30) and verdict.monthly is not None and verdict.monthly > 80


@given(
    st.decimals(min_value=0, max_value=99999, places=3, allow_nan=False),
    st.decimals(min_value=0, max_value=99999, places=3, allow_nan=False),
)
def test_check_reading_is_total(previous: Decimal, value: Decimal) -> None:
    verdict = check_reading(meter(str(previous)), value, NOW, Thresholds())
    if verdict.outcome == "below_previous":
        assert value < previous
    else:
        assert verdict.consumption is not None and verdict.consumption >= 0


@pytest.mark.parametrize(
    ("day", "inside"), [(22, False), (23, True), (24, True), (25, True), (26, False), (1, False)]
)
def test_in_window(day: int, inside: bool) -> None:
    assert in_window(date(2026, 11, day), (23, 25)) is inside


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (time(7, 59, 59), False),
        (time(8, 0), True),
        (time(12, 30), True),
        (time(19, 59, 59), True),
        (time(20, 0), False),
        (time(23, 0), False),
    ],
)
def test_in_operator_hours(moment: time, open_: bool) -> None:
    assert in_operator_hours(moment, ((8, 0), (20, 0))) is open_


def test_operator_hours_with_minutes() -> None:
    hours = ((8, 30), (17, 15))
    assert not in_operator_hours(time(8, 29), hours)
    assert in_operator_hours(time(8, 30), hours)
    assert not in_operator_hours(time(17, 15), hours)

"""Intake rules: is a meter reading plausible? Shared by the phone line and the operator view.

The anomaly limit, decided here (DOMAIN.md leaves the details open):

- With at least `min_history_months + 1` readings, the average monthly consumption is the sum of
  the deltas between consecutive readings (a rollover counted across the top of the register,
  any other drop counted as 0) over the months the history spans. The limit is
  `anomaly_factor x average`, but never below a tenth of the kind's monthly cap: a meter that
  stood still for months would otherwise flag every litre.
- With less history, the limit is the kind's absolute monthly cap.
- Months elapsed are days / 30.44, at least half a month, so two readings a week apart are not
  scaled up into an absurd monthly figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from callflows.model import MeterInfo, PastReading, Thresholds

Outcome = Literal[
    "ok",  # store as accepted
    "below_previous",  # lower than the previous accepted reading, and not a rollover
    "anomalous",  # consumption per month above the limit: warn, store flagged if confirmed
    "too_many_digits",  # more integer digits or decimals than the register has
    "inactive",  # meter decommissioned
    "overdue",  # verification (poverka) overdue: not used for billing
]

DAYS_PER_MONTH = Decimal("30.44")
MIN_MONTHS = Decimal("0.5")
# The anomaly limit never drops below this share of the kind's monthly cap.
FLOOR_SHARE_OF_CAP = Decimal("0.1")
_FIGURE = Decimal("0.001")
_KEYED = re.compile(r"(\d+)(?:\*(\d*))?")


@dataclass(frozen=True)
class Verdict:
    """What the rules say about one value, with the figures an operator needs to see why."""

    outcome: Outcome
    previous: Decimal | None = None
    consumption: Decimal | None = None  # since the previous reading (rollover accounted for)
    monthly: Decimal | None = None  # consumption per month elapsed since the previous reading
    limit: Decimal | None = None  # the monthly limit it was compared with
    rollover: bool = False


def parse_keyed(digits: str) -> Decimal | None:
    """Keypad input to a value: digits, '*' as the decimal separator; None if unusable.

    >>> parse_keyed("12345*67")
    Decimal('12345.67')
    >>> parse_keyed("00456")
    Decimal('456')
    >>> parse_keyed("12*") is None, parse_keyed("*5") is None, parse_keyed("1*2*3") is None
    (False, True, True)
    """
    match = _KEYED.fullmatch(digits)
    if match is None:
        return None
    whole, fraction = match[1], match[2]
    # A trailing '*' with nothing after it is a separator the caller did not need.
    text = f"{int(whole)}.{fraction}" if fraction else str(int(whole))
    return Decimal(text)


def meter_in_service(meter: MeterInfo, today: date) -> Literal["ok", "inactive", "overdue"]:
    """Whether the meter's readings can be used for billing today."""
    if not meter.active:
        return "inactive"
    if meter.verification_due is not None and meter.verification_due < today:
        return "overdue"
    return "ok"


def fits_register(meter: MeterInfo, value: Decimal) -> bool:
    """Whether the value fits the register: integer digits and decimals, not negative."""
    if not value.is_finite() or value < 0:
        return False
    exponent = value.normalize().as_tuple().exponent
    decimals = max(0, -exponent) if isinstance(exponent, int) else 0
    return len(str(int(value))) <= meter.integer_digits and decimals <= meter.decimal_digits


def _capacity(meter: MeterInfo) -> Decimal:
    return Decimal(10) ** meter.integer_digits


def _rollover_consumption(
    meter: MeterInfo, previous: Decimal, value: Decimal, margin: Decimal
) -> Decimal | None:
    """Consumption across the top of the register, or None if the drop is not a rollover."""
    capacity = _capacity(meter)
    if previous >= capacity * (1 - margin) and value < capacity * margin:
        return capacity - previous + value
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def months_between(earlier: datetime, later: datetime) -> Decimal:
    """Months elapsed (days / 30.44), at least half a month."""
    seconds = Decimal(str((_aware(later) - _aware(earlier)).total_seconds()))
    return max(seconds / Decimal(86400) / DAYS_PER_MONTH, MIN_MONTHS)


def average_monthly(meter: MeterInfo, thresholds: Thresholds) -> Decimal | None:
    """Average monthly consumption over the meter's history, or None if the history is short."""
    history = meter.history
    if len(history) < thresholds.min_history_months + 1:
        return None
    total = Decimal(0)
    for before, after in zip(history, history[1:], strict=False):
        total += _delta(meter, before, after, thresholds.rollover_margin)
    return total / months_between(history[0].taken_at, history[-1].taken_at)


def _delta(meter: MeterInfo, before: PastReading, after: PastReading, margin: Decimal) -> Decimal:
    if after.value >= before.value:
        return after.value - before.value
    return _rollover_consumption(meter, before.value, after.value, margin) or Decimal(0)


def monthly_limit(meter: MeterInfo, thresholds: Thresholds) -> Decimal | None:
    """The monthly consumption above which a value is anomalous; None if nothing applies."""
    cap = thresholds.monthly_cap.get(meter.kind)
    average = average_monthly(meter, thresholds)
    if average is None:
        return cap
    limit = thresholds.anomaly_factor * average
    if cap is not None:
        limit = max(limit, cap * FLOOR_SHARE_OF_CAP)
    return limit


def _figure(value: Decimal) -> Decimal:
    return value.quantize(_FIGURE, rounding=ROUND_HALF_UP).normalize()


def check_reading(
    meter: MeterInfo, value: Decimal, now: datetime, thresholds: Thresholds
) -> Verdict:
    """Apply the rules of ../shared/DOMAIN.md to a value for a meter."""
    if not fits_register(meter, value):
        return Verdict("too_many_digits")
    if not meter.history:
        return Verdict("ok")
    last = meter.history[-1]
    previous, rollover = last.value, False
    if value >= previous:
        consumption = value - previous
    else:
        across = _rollover_consumption(meter, previous, value, thresholds.rollover_margin)
        if across is None:
            return Verdict("below_previous", previous=previous)
        consumption, rollover = across, True
    monthly = consumption / months_between(last.taken_at, now)
    limit = monthly_limit(meter, thresholds)
    outcome: Outcome = "anomalous" if limit is not None and monthly > limit else "ok"
    return Verdict(
        outcome,
        previous=previous,
        consumption=consumption,
        monthly=_figure(monthly),
        limit=None if limit is None else _figure(limit),
        rollover=rollover,
    )


def in_window(today: date, window: tuple[int, int]) -> bool:
    """Whether `today` (local date) is a submission day."""
    return window[0] <= today.day <= window[1]


def in_operator_hours(now_local: time, hours: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    """Whether operators answer at this local time of day."""
    (start_h, start_m), (end_h, end_m) = hours
    moment = now_local.replace(tzinfo=None)
    return time(start_h, start_m) <= moment < time(end_h, end_m)

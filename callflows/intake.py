"""Intake rules: is a meter reading plausible? Shared by the phone line and the operator view.

Interface fixed here; bodies are being written (see issue 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from callflows.model import MeterInfo, Thresholds

Outcome = Literal[
    "ok",  # store as accepted
    "below_previous",  # lower than the previous accepted reading, and not a rollover
    "anomalous",  # consumption per month above the limit: warn, store flagged if confirmed
    "too_many_digits",  # more integer digits or decimals than the register has
    "inactive",  # meter decommissioned
    "overdue",  # verification (poverka) overdue: not used for billing
]


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
    """Keypad input to a value: digits, '*' as the decimal separator; None if unusable."""
    raise NotImplementedError


def meter_in_service(meter: MeterInfo, today: date) -> Literal["ok", "inactive", "overdue"]:
    """Whether the meter's readings can be used for billing today."""
    raise NotImplementedError


def check_reading(
    meter: MeterInfo, value: Decimal, now: datetime, thresholds: Thresholds
) -> Verdict:
    """Apply the rules of ../shared/DOMAIN.md to a value for a meter."""
    raise NotImplementedError


def in_window(today: date, window: tuple[int, int]) -> bool:
    """Whether `today` (local date) is a submission day."""
    raise NotImplementedError


def period_for(today: date, window: tuple[int, int]) -> str:
    """'YYYY-MM' a reading handed in on `today` counts for (after the window: next month)."""
    raise NotImplementedError


def in_operator_hours(now_local: time, hours: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    """Whether operators answer at this local time of day."""
    raise NotImplementedError

"""The line's rules applied to a value an operator types, with the consequence in words."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from callflows.intake import Verdict, check_reading, meter_in_service
from callflows.model import MeterInfo, Thresholds
from ivr.meter_info import meter_info
from ivr.operator.labels import consequence
from storage import ledger
from storage.models import Meter

# Values the rules say cannot be stored at all; the rest an operator may confirm.
REFUSED = {"too_many_digits", "inactive"}


class DecisionError(ValueError):
    """A decision that cannot be made; the message is for the screen."""


@dataclass(frozen=True)
class Check:
    """A value checked against the rules, waiting for the operator to save it."""

    value: Decimal
    verdict: Verdict
    text: str
    service: str = "ok"  # ok | inactive | overdue
    # The "Сохранить" form's one-time token: the stored reading's idempotency key, so a form
    # submitted twice (a double click, a resent POST) stores once.
    once: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def can_save(self) -> bool:
        """Whether the rules allow storing this value at all."""
        return self.verdict.outcome not in REFUSED and self.service not in REFUSED

    @property
    def clean(self) -> bool:
        """Whether nothing at all is wrong with the value or the meter."""
        return self.verdict.outcome == "ok" and self.service == "ok"

    @property
    def token(self) -> str:
        """The value as the "Сохранить" step carries it back."""
        return format(self.value, "f")


def parse_value(raw: str) -> Decimal:
    """A typed reading: digits with an optional comma or dot; raises DecisionError.

    >>> parse_value(" 1 234,5 ")
    Decimal('1234.5')
    """
    text = re.sub(r"\s", "", raw or "").replace(",", ".")
    if not re.fullmatch(r"\d{1,12}(\.\d{1,6})?", text):
        raise DecisionError("Введите число, например 1234,56")
    return Decimal(text)


def meter_info_at(
    session: Session, meter: Meter, period: str, exclude_id: int | None = None
) -> MeterInfo:
    """The meter as the rules see it for `period` (the ledger's history and current reading),
    leaving out reading `exclude_id` (the one being corrected)."""
    history = ledger.rules_history(session, [meter.id], period, exclude_id)[meter.id]
    current = ledger.current_readings(session, [meter.id], period).get(meter.id)
    if current is not None and current.id == exclude_id:
        current = None
    return meter_info(meter, history, current)


def check_value(
    session: Session,
    thresholds: Thresholds,
    meter: Meter,
    value: Decimal,
    at: datetime,
    period: str,
    exclude_id: int | None = None,
) -> Check:
    """Run the line's rules on a value for a meter as of `at`."""
    info = meter_info_at(session, meter, period, exclude_id)
    verdict = check_reading(info, value, at, thresholds)
    text = consequence(verdict, meter.unit)
    service = meter_in_service(info, at.date())
    if service != "ok":
        # The value may be fine, but the meter itself cannot be billed on.
        text = consequence(Verdict(service), meter.unit, meter.verification_due) + "; " + text
    return Check(value, verdict, text, service)


def confirmed(form_token: str | None, check: Check) -> bool:
    """Whether the form is the "Сохранить" step for exactly this checked value."""
    if not form_token:
        return False
    try:
        return Decimal(form_token) == check.value
    except ArithmeticError:
        return False


ONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def once_key(form: Mapping[str, str]) -> str | None:
    """The idempotency key of a "Сохранить" form, from its one-time token; None if absent."""
    token = form.get("once") or ""
    return f"operator:{token}" if ONCE.fullmatch(token) else None

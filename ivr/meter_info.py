"""A meter as the intake rules see it: one conversion for the phone line and the operator view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from callflows.model import MeterInfo, MeterKind, PastReading
from storage.ledger import LedgerReading
from storage.models import Meter


def meter_info(
    meter: Meter, history: Iterable[LedgerReading], current: LedgerReading | None
) -> MeterInfo:
    """`history`: the ledger's rules history, oldest first; `current`: the period's current
    accepted reading."""
    return MeterInfo(
        id=meter.id,
        serial=meter.serial,
        kind=cast(MeterKind, meter.kind),
        unit=meter.unit,
        integer_digits=meter.integer_digits,
        decimal_digits=meter.decimal_digits,
        location=meter.location,
        verification_due=meter.verification_due,
        active=meter.active,
        history=tuple(PastReading(value=r.value, taken_at=r.taken_at) for r in history),
        current_period_value=current.value if current else None,
        current_period_reading_id=current.id if current else None,
    )

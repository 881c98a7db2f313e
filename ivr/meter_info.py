"""A meter as the intake rules see it: one conversion for the phone line and the operator view."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Protocol, cast

from callflows.model import MeterInfo, MeterKind, PastReading
from storage.ledger import LedgerReading


class MeterColumns(Protocol):
    """What the rules read of a meter: an ORM `Meter`, or a row of the same columns."""

    @property
    def id(self) -> int: ...
    @property
    def serial(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def integer_digits(self) -> int: ...
    @property
    def decimal_digits(self) -> int: ...
    @property
    def location(self) -> str: ...
    @property
    def verification_due(self) -> date | None: ...
    @property
    def active(self) -> bool: ...


def meter_info(
    meter: MeterColumns, history: Iterable[LedgerReading], current: LedgerReading | None
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

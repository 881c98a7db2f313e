"""Readings leaving for the billing centre: streamed, never all in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.ledger import IS_CURRENT
from storage.models import Account, Call, Meter, Reading


class ExportedReading(NamedTuple):
    account: str
    meter_serial: str
    meter_kind: str
    value: Decimal
    taken_at: datetime
    source: str
    call_sid: str | None
    decimal_digits: int


def billed_readings(
    session: Session, period: str, supplier: str | None = None, batch: int = 2000
) -> Iterator[ExportedReading]:
    """The ledger's current readings of `period` (YYYY-MM), one per meter at most, by
    account and meter.

    `supplier` matches the meter's supplier, or the account's when the meter names none.
    """
    stmt = (
        select(
            Account.number, Meter.serial, Meter.kind, Reading.value, Reading.taken_at,
            Reading.source, Call.call_sid, Meter.decimal_digits,
        )
        .join(Meter, Reading.meter_id == Meter.id)
        .join(Account, Meter.account_id == Account.id)
        .outerjoin(Call, Reading.call_id == Call.id)
        .where(Reading.period == period, IS_CURRENT)
        .order_by(Account.number, Meter.serial, Reading.taken_at, Reading.id)
        .execution_options(yield_per=batch)
    )  # fmt: skip
    if supplier is not None:
        stmt = stmt.where(
            func.coalesce(func.nullif(Meter.supplier, ""), Account.supplier) == supplier
        )
    for row in session.execute(stmt):
        yield ExportedReading(*row)

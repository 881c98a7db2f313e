"""Small builders for test data, written straight through the models."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from storage.models import Account, Meter, Phone, Reading


def add_account(
    session: Session,
    number: str = "1001001",
    phones: tuple[str, ...] = ("+79211234567",),
    address: str = "г. Вологда, ул. Ленина, д. 5, кв. 12",
) -> Account:
    """An account with its phones."""
    account = Account(number=number, address=address, supplier="Вологдагортеплосеть")
    session.add(account)
    session.flush()
    for phone in phones:
        session.add(Phone(account_id=account.id, e164=phone))
    return account


def add_meter(
    session: Session,
    account: Account,
    serial: str = "0145678",
    kind: str = "hot_water",
    history: tuple[str, ...] = ("100", "103", "106", "109"),
    now: datetime | None = None,
    **fields: object,
) -> Meter:
    """A meter with monthly accepted readings ending about a month before `now`."""
    meter = Meter(
        account_id=account.id,
        serial=serial,
        kind=kind,
        unit="м3" if kind != "heat" else "Гкал",
        integer_digits=int(fields.pop("integer_digits", 5)),  # type: ignore[call-overload]
        decimal_digits=int(fields.pop("decimal_digits", 3)),  # type: ignore[call-overload]
        location=str(fields.pop("location", "кухня")),
        active=bool(fields.pop("active", True)),
        verification_due=fields.pop("verification_due", None),
    )
    session.add(meter)
    session.flush()
    now = now or datetime.now().astimezone()
    for i, value in enumerate(history):
        months_back = len(history) - i
        taken = now - timedelta(days=30 * months_back)
        session.add(
            Reading(
                meter_id=meter.id,
                value=Decimal(value),
                taken_at=taken,
                # One period per reading, months before now's: 30-day steps can land twice
                # in one month, and a period holds one current reading.
                period=_month_back(now, months_back),
                source="import",
                status="accepted",
            )
        )
    session.flush()
    return meter


def _month_back(moment: datetime, months: int) -> str:
    index = moment.year * 12 + moment.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"

"""A small demo dataset: a few accounts, phones and meters with a year of monthly history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Account, Meter, Phone, Reading


@dataclass(frozen=True)
class DemoMeter:
    serial: str
    kind: str
    unit: str
    start: Decimal
    monthly: Decimal
    location: str
    integer_digits: int = 5
    decimal_digits: int = 3
    verification_due: date | None = date(2030, 12, 31)


@dataclass(frozen=True)
class DemoAccount:
    number: str
    address: str
    phones: tuple[str, ...]
    meters: tuple[DemoMeter, ...]
    supplier: str = "Вологдагортеплосеть"


DEMO_ACCOUNTS = (
    DemoAccount(
        "1001001",
        "г. Вологда, ул. Ленина, д. 5, кв. 12",
        ("+79211234567",),
        (
            DemoMeter("0145678", "hot_water", "м3", Decimal("120.500"), Decimal("3.2"), "кухня"),
            DemoMeter("0245679", "cold_water", "м3", Decimal("210.100"), Decimal("5.1"), "кухня"),
            DemoMeter("0345680", "heat", "Гкал", Decimal("15.210"), Decimal("0.9"), "квартира"),
        ),
    ),
    DemoAccount(
        "1001002",
        "г. Вологда, ул. Мира, д. 1, кв. 3",
        ("+79217654321",),
        (DemoMeter("0445681", "hot_water", "м3", Decimal("56.000"), Decimal("2.5"), "ванная"),),
    ),
    DemoAccount(
        "1001003",
        "г. Вологда, Советский пр., д. 20, кв. 7",
        ("+79217654321", "+78172212121"),
        (
            DemoMeter("0545682", "hot_water", "м3", Decimal("300.000"), Decimal("4.0"), "кухня"),
            DemoMeter(
                "0645683",
                "cold_water",
                "м3",
                Decimal("400.000"),
                Decimal("6.0"),
                "кухня",
                verification_due=date(2024, 1, 31),
            ),
        ),
    ),
)


def demo_phones() -> list[tuple[str, str]]:
    """(number, what happens when it calls), for the demo's printout."""
    return [
        ("+79211234567", "один лицевой счёт 1001001, три счётчика"),
        ("+79217654321", "два лицевых счёта: выбор по клавише"),
        ("+79001112233", "неизвестный номер: вход по номеру лицевого счёта (1001001)"),
    ]


def load_demo(session: Session, now: datetime | None = None) -> int:
    """Insert the demo accounts (skipping those present); returns how many were added."""
    now = now or datetime.now(UTC)
    added = 0
    for demo in DEMO_ACCOUNTS:
        if session.scalar(select(Account.id).where(Account.number == demo.number)):
            continue
        account = Account(number=demo.number, address=demo.address, supplier=demo.supplier)
        session.add(account)
        session.flush()
        for phone in demo.phones:
            session.add(Phone(account_id=account.id, e164=phone))
        for spec in demo.meters:
            _add_meter(session, account, spec, now)
        added += 1
    session.commit()
    return added


def _add_meter(session: Session, account: Account, spec: DemoMeter, now: datetime) -> None:
    meter = Meter(
        account_id=account.id,
        serial=spec.serial,
        kind=spec.kind,
        unit=spec.unit,
        integer_digits=spec.integer_digits,
        decimal_digits=spec.decimal_digits,
        supplier=account.supplier,
        location=spec.location,
        verification_due=spec.verification_due,
        active=True,
    )
    session.add(meter)
    session.flush()
    # Twelve monthly readings, the last one about a month ago.
    for month in range(12):
        taken = now - timedelta(days=30 * (12 - month))
        value = spec.start + spec.monthly * month
        session.add(
            Reading(
                meter_id=meter.id,
                value=value,
                taken_at=taken,
                period=taken.strftime("%Y-%m"),
                source="import",
                status="accepted",
            )
        )

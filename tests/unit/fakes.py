"""An in-memory Directory and builders for the flow's tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from callflows.model import AccountInfo, MeterInfo, MeterKind, PastReading

# 24 November 2026, 10:00 in Moscow: inside the default window and operator hours.
NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@dataclass
class FakeDirectory:
    """Accounts by phone and by number, and a record of every lookup."""

    by_phone: dict[str, list[AccountInfo]] = field(default_factory=dict)
    accounts: list[AccountInfo] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def add(self, account: AccountInfo, *phones: str) -> AccountInfo:
        """Register an account, bound to these phones."""
        self.accounts.append(account)
        for phone in phones:
            self.by_phone.setdefault(phone, []).append(account)
        return account

    def accounts_for_phone(self, e164: str, now: datetime) -> list[AccountInfo]:
        """Accounts bound to a caller's number (E.164)."""
        self.lookups.append(f"phone:{e164}")
        return list(self.by_phone.get(e164, []))

    def account_by_number(self, number: str, now: datetime) -> AccountInfo | None:
        """The account with this number, or None."""
        self.lookups.append(f"number:{number}")
        return next((a for a in self.accounts if a.number == number), None)


def history(*values: str, last: datetime = NOW - timedelta(days=31)) -> tuple[PastReading, ...]:
    """Readings a month apart, oldest first, the last one `last`."""
    count = len(values)
    return tuple(
        PastReading(Decimal(v), last - timedelta(days=31 * (count - 1 - i)))
        for i, v in enumerate(values)
    )


def make_meter(
    meter_id: int = 1,
    *values: str,
    kind: MeterKind = "hot_water",
    serial: str = "",
    integer_digits: int = 5,
    decimal_digits: int = 3,
    **kwargs: object,
) -> MeterInfo:
    """A meter with a monthly history of `values`."""
    return MeterInfo(
        id=meter_id,
        serial=serial or f"SN00{meter_id}456",
        kind=kind,
        unit="Гкал" if kind == "heat" else "м3",
        integer_digits=integer_digits,
        decimal_digits=decimal_digits,
        history=history(*values),
        **kwargs,  # type: ignore[arg-type]
    )


def make_account(
    account_id: int = 1, *meters: MeterInfo, number: str = "", address: str = ""
) -> AccountInfo:
    """An account with these meters."""
    return AccountInfo(
        id=account_id,
        number=number or f"10000{account_id}234",
        address=address or f"г. Вологда, ул. Мира, д. {account_id}, кв. 5",
        supplier="Вологдатеплосеть",
        meters=meters,
    )

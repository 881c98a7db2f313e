"""The flow's Directory over the database: accounts by phone or number, with meter history."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callflows.model import AccountInfo
from ivr.meter_info import meter_info
from storage.ledger import current_readings, period_of, rules_history
from storage.models import Account, Meter, Phone

KIND_ORDER = {"hot_water": 0, "cold_water": 1, "heat": 2}


class SqlDirectory:
    """Looks accounts up in the readings database, in the configured time zone and window."""

    def __init__(self, session: Session, timezone: ZoneInfo, window: tuple[int, int]):
        self.session = session
        self.timezone = timezone
        self.window = window

    def period_of(self, moment: datetime) -> str:
        """The period readings handed in at `moment` count for (the ledger's rule)."""
        return period_of(moment, self.timezone, self.window)

    def accounts_for_phone(self, e164: str, period: str) -> list[AccountInfo]:
        """Accounts bound to this number, by account number."""
        accounts = self.session.scalars(
            select(Account)
            .join(Phone, Phone.account_id == Account.id)
            .where(Phone.e164 == e164)
            .order_by(Account.number)
            .options(selectinload(Account.meters))
        ).all()
        return [self._info(account, period) for account in accounts]

    def account_by_number(self, number: str, period: str) -> AccountInfo | None:
        """The account with this number, or None."""
        account = self.session.scalars(
            select(Account).where(Account.number == number).options(selectinload(Account.meters))
        ).one_or_none()
        return self._info(account, period) if account else None

    def _info(self, account: Account, period: str) -> AccountInfo:
        meters = sorted(
            account.meters, key=lambda m: (KIND_ORDER.get(m.kind, 9), m.location, m.serial)
        )
        ids = [m.id for m in meters]
        current = current_readings(self.session, ids, period)
        history = rules_history(self.session, ids, period)
        infos = [meter_info(meter, history[meter.id], current.get(meter.id)) for meter in meters]
        return AccountInfo(
            id=account.id,
            number=account.number,
            address=account.address,
            supplier=account.supplier,
            meters=tuple(infos),
        )


def _meter_order(meter: Meter) -> tuple[int, str, str]:
    return KIND_ORDER.get(meter.kind, 9), meter.location, meter.serial

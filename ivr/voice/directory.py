"""The flow's Directory over the database: accounts by phone or number, with meter history.

Core statements, built once: an identification costs three (the accounts with their meters,
the period's current readings and the rules' history of all their meters), whatever the
number of accounts, and works on a Session or on the hot path's Connection alike. The
incoming webhook reads the same rows for the caller's number beforehand, as prebuilt texts
in its one round trip of reads (`storage.incoming`), and hands the flow a
`PrefetchedDirectory` that answers from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select

from callflows.model import AccountInfo
from ivr.meter_info import meter_info
from storage import counters
from storage.incoming import PhoneRows
from storage.ledger import Db, LedgerReading, current_readings, period_of, rules_history
from storage.models import Account, Meter, Phone

KIND_ORDER = {"hot_water": 0, "cold_water": 1, "heat": 2}
# Account-number attempts by every caller not bound to the account, together.
GUESSES_KEY = "account-number-guesses"
HOUR = timedelta(hours=1)

_ACCOUNT_METERS = (
    select(
        Account.id, Account.number, Account.address, Account.supplier,
        Meter.id.label("meter_id"), Meter.serial, Meter.kind, Meter.unit, Meter.integer_digits,
        Meter.decimal_digits, Meter.location, Meter.verification_due, Meter.active,
    )
    .select_from(Account)
    .outerjoin(Meter, Meter.account_id == Account.id)
)  # fmt: skip
BY_PHONE = (
    _ACCOUNT_METERS.join(Phone, Phone.account_id == Account.id)
    .where(Phone.e164 == bindparam("e164"))
    .order_by(Account.number)
)
BY_NUMBER = _ACCOUNT_METERS.where(Account.number == bindparam("number"))


@dataclass(frozen=True)
class MeterRow:
    """A meter's columns as the intake rules read them (`ivr.meter_info.MeterColumns`)."""

    id: int
    serial: str
    kind: str
    unit: str
    integer_digits: int
    decimal_digits: int
    location: str
    verification_due: date | None
    active: bool


class SqlDirectory:
    """Looks accounts up in the readings database, in the configured time zone and window."""

    def __init__(
        self, db: Db, timezone: ZoneInfo, window: tuple[int, int], guesses_per_hour: int = 30
    ):
        self.db = db
        self.guesses_per_hour = guesses_per_hour
        self.timezone = timezone
        self.window = window

    def period_of(self, moment: datetime) -> str:
        """The period readings handed in at `moment` count for (the ledger's rule)."""
        return period_of(moment, self.timezone, self.window)

    def accounts_for_phone(self, e164: str, period: str) -> list[AccountInfo]:
        """Accounts bound to this number, by account number."""
        return self._infos(self.db.execute(BY_PHONE, {"e164": e164}).all(), period)

    def account_by_number(self, number: str, period: str) -> AccountInfo | None:
        """The account with this number, or None."""
        found = self._infos(self.db.execute(BY_NUMBER, {"number": number}).all(), period)
        return found[0] if found else None

    def reserve_guess(self, now: datetime) -> bool:
        """Count an account-number attempt (atomic: counters.take, one conditional UPDATE)."""
        return counters.take(self.db, GUESSES_KEY, now, HOUR, self.guesses_per_hour)

    def release_guess(self, now: datetime) -> None:
        """Give back the attempt of a caller who confirmed the second fact."""
        counters.give_back(self.db, GUESSES_KEY)

    def _infos(self, rows: Sequence[Sequence[Any]], period: str) -> list[AccountInfo]:
        ids = [row[4] for row in rows if row[4] is not None]
        return account_infos(
            rows, current_readings(self.db, ids, period), rules_history(self.db, ids, period)
        )


class PrefetchedDirectory(SqlDirectory):
    """A SqlDirectory that answers `accounts_for_phone` for one number and period from rows
    read beforehand (`storage.incoming`: in the incoming webhook's one round trip of reads);
    anything else it asks the database, as SqlDirectory does."""

    def __init__(self, db: Db, timezone: ZoneInfo, window: tuple[int, int],
                 guesses_per_hour: int, rows: PhoneRows):  # fmt: skip
        super().__init__(db, timezone, window, guesses_per_hour)
        self.rows = rows

    def accounts_for_phone(self, e164: str, period: str) -> list[AccountInfo]:
        rows = self.rows
        if (e164, period) != (rows.e164, rows.period):
            return super().accounts_for_phone(e164, period)
        current = {r[1]: LedgerReading(*r) for r in rows.current}
        meters = [r[4] for r in rows.accounts if r[4] is not None]
        history: dict[int, list[LedgerReading]] = {mid: [] for mid in meters}
        for r in rows.history:  # newest first per meter, at most HISTORY_LIMIT of each
            history.setdefault(r[1], []).append(LedgerReading(*r))
        for items in history.values():
            items.reverse()
        return account_infos(rows.accounts, current, history)


def account_infos(rows: Sequence[Sequence[Any]], current: Mapping[int, LedgerReading],
                  history: Mapping[int, list[LedgerReading]]) -> list[AccountInfo]:  # fmt: skip
    """The accounts of BY_PHONE's (or BY_NUMBER's) rows, in their order, each with its meters
    (kind, location, serial), their rules history (oldest first) and current reading."""
    accounts: dict[int, tuple[Sequence[Any], list[MeterRow]]] = {}
    for row in rows:
        _, meters = accounts.setdefault(row[0], (row, []))
        if row[4] is not None:
            meters.append(MeterRow(*row[4:]))
    infos = []
    for account, meters in accounts.values():
        meters.sort(key=lambda m: (KIND_ORDER.get(m.kind, 9), m.location, m.serial))
        infos.append(AccountInfo(
            id=account[0], number=account[1], address=account[2], supplier=account[3],
            meters=tuple(meter_info(m, history[m.id], current.get(m.id)) for m in meters),
        ))  # fmt: skip
    return infos

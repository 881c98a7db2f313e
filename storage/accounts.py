"""Accounts, their phones and meters: a snapshot in dicts and chunked upserts for bulk imports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from sys import intern

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from storage.clock import utcnow
from storage.models import Account, Meter, Phone

# Rows per multi-row INSERT. psycopg parses each statement's text in Python; pages of 100 rows
# cost about a third less CPU than SQLAlchemy's default 1000 on PostgreSQL, and no more on SQLite.
BULK = {"insertmanyvalues_page_size": 100}


class MeterOwnedElsewhere(Exception):
    """A meter serial already belongs to another account: an import never moves a meter."""


@dataclass(slots=True, frozen=True)
class MeterFields:
    """What a billing file says about one meter."""

    serial: str
    kind: str
    unit: str
    integer_digits: int
    decimal_digits: int
    supplier: str
    location: str
    verification_due: date | None

    @classmethod
    def shared(
        cls,
        serial: str,
        kind: str,
        unit: str,
        integer_digits: int,
        decimal_digits: int,
        supplier: str,
        location: str,
        verification_due: date | None,
    ) -> MeterFields:
        """Fields whose repeated strings (kind, unit, supplier, location) share one copy."""
        # 200 000 meters hold a handful of distinct kinds and suppliers: saves ~60 MB.
        return cls(
            serial, intern(kind), intern(unit), integer_digits, decimal_digits,
            intern(supplier), intern(location), verification_due,
        )  # fmt: skip


@dataclass(slots=True)
class AccountUpsert:
    """One account as a file describes it: `phones` replaces its phone set (or only adds to it,
    when `replace_phones` is false), `meters` by serial."""

    number: str
    address: str
    supplier: str
    phones: set[str] = field(default_factory=set)
    meters: dict[str, MeterFields] = field(default_factory=dict)
    replace_phones: bool = True


@dataclass(slots=True)
class KnownAccount:
    id: int
    address: str
    supplier: str


@dataclass(slots=True)
class KnownMeter:
    id: int
    account_id: int
    fields: MeterFields


@dataclass
class Directory:
    """Every account, meter and phone in the database, loaded once so a bulk import needs no
    query per row."""

    accounts: dict[str, KnownAccount] = field(default_factory=dict)
    numbers: dict[int, str] = field(default_factory=dict)
    meters: dict[str, KnownMeter] = field(default_factory=dict)
    phones: dict[int, dict[str, int]] = field(default_factory=dict)  # account id -> e164 -> id

    @classmethod
    def load(cls, session: Session) -> Directory:
        """Read accounts, meters and phones in three streamed queries."""
        directory = cls()
        stream = {"yield_per": 5000}
        accounts = select(Account.id, Account.number, Account.address, Account.supplier)
        for acc_id, number, address, supplier in session.execute(
            accounts, execution_options=stream
        ):
            directory.accounts[number] = KnownAccount(acc_id, address, intern(supplier))
            directory.numbers[acc_id] = number
        meters = select(
            Meter.id, Meter.account_id, Meter.serial, Meter.kind, Meter.unit, Meter.integer_digits,
            Meter.decimal_digits, Meter.supplier, Meter.location, Meter.verification_due,
        )  # fmt: skip
        for row in session.execute(meters, execution_options=stream):
            fields_ = MeterFields.shared(
                row.serial, row.kind, row.unit, row.integer_digits, row.decimal_digits,
                row.supplier, row.location, row.verification_due,
            )  # fmt: skip
            directory.meters[fields_.serial] = KnownMeter(row[0], row[1], fields_)
        phones = select(Phone.id, Phone.account_id, Phone.e164)
        for phone_id, account_id, e164 in session.execute(phones, execution_options=stream):
            directory.phones.setdefault(account_id, {})[e164] = phone_id
        return directory

    def owner(self, serial: str) -> str | None:
        """The number of the account a meter serial belongs to, if the meter exists."""
        known = self.meters.get(serial)
        return None if known is None else self.numbers[known.account_id]


@dataclass
class UpsertCounts:
    """What an upsert changed."""

    accounts_new: int = 0
    accounts_changed: int = 0
    meters_new: int = 0
    meters_changed: int = 0
    phones_added: int = 0
    phones_removed: int = 0

    def add(self, other: UpsertCounts) -> None:
        """Accumulate another chunk's counts."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def upsert_accounts(
    session: Session, directory: Directory, units: list[AccountUpsert]
) -> UpsertCounts:
    """Insert or update accounts, meters and phone sets; unchanged rows are not written.

    The directory learns the changes only after every statement succeeded, so a caller can roll
    back (a savepoint, the transaction) and retry a smaller chunk with the directory intact.
    """
    counts = UpsertCounts()
    ids = _write_accounts(session, directory, units, counts)
    new_meters = _write_meters(session, directory, units, ids, counts)
    new_phones, gone = _write_phones(session, directory, units, ids, counts)
    for unit in units:
        acc_id = ids[unit.number]
        directory.accounts[unit.number] = KnownAccount(acc_id, unit.address, unit.supplier)
        directory.numbers[acc_id] = unit.number
        for serial, fields_ in unit.meters.items():
            meter_id = new_meters.get(serial) or directory.meters[serial].id
            directory.meters[serial] = KnownMeter(meter_id, acc_id, fields_)
    for acc_id, phone_ids in gone.items():
        for e164 in phone_ids:
            directory.phones[acc_id].pop(e164, None)
    for acc_id, e164, phone_id in new_phones:
        directory.phones.setdefault(acc_id, {})[e164] = phone_id
    return counts


def _write_accounts(
    session: Session, directory: Directory, units: list[AccountUpsert], counts: UpsertCounts
) -> dict[str, int]:
    ids = {
        u.number: directory.accounts[u.number].id for u in units if u.number in directory.accounts
    }
    fresh = [
        {"number": u.number, "address": u.address, "supplier": u.supplier, "created_at": utcnow()}
        for u in units
        if u.number not in ids
    ]
    if fresh:
        stmt = insert(Account).returning(Account.id, Account.number)
        ids.update(
            {
                number: acc_id
                for acc_id, number in session.execute(stmt, fresh, execution_options=BULK)
            }
        )
        counts.accounts_new = len(fresh)
    changed = []
    for u in units:
        known = directory.accounts.get(u.number)
        if known and (known.address, known.supplier) != (u.address, u.supplier):
            changed.append({"id": known.id, "address": u.address, "supplier": u.supplier})
    if changed:
        session.execute(update(Account), changed)
        counts.accounts_changed = len(changed)
    return ids


def _write_meters(
    session: Session,
    directory: Directory,
    units: list[AccountUpsert],
    ids: dict[str, int],
    counts: UpsertCounts,
) -> dict[str, int]:
    fresh, changed = [], []
    for unit in units:
        for serial, fields_ in unit.meters.items():
            known = directory.meters.get(serial)
            values = _meter_values(fields_)
            if known is None:
                fresh.append({**values, "account_id": ids[unit.number], "active": True})
                continue
            if known.account_id != ids[unit.number]:
                owner = directory.numbers.get(known.account_id, "?")
                raise MeterOwnedElsewhere(f"meter serial {serial!r} belongs to account {owner!r}")
            if known.fields != fields_:
                changed.append({**values, "id": known.id})
    new_ids: dict[str, int] = {}
    if fresh:
        stmt = insert(Meter).returning(Meter.id, Meter.serial)
        new_ids = {
            serial: meter_id
            for meter_id, serial in session.execute(stmt, fresh, execution_options=BULK)
        }
        counts.meters_new = len(fresh)
    if changed:
        session.execute(update(Meter), changed)
        counts.meters_changed = len(changed)
    return new_ids


def _meter_values(fields_: MeterFields) -> dict[str, object]:
    return {name: getattr(fields_, name) for name in MeterFields.__slots__}


def _write_phones(
    session: Session,
    directory: Directory,
    units: list[AccountUpsert],
    ids: dict[str, int],
    counts: UpsertCounts,
) -> tuple[list[tuple[int, str, int]], dict[int, list[str]]]:
    add: list[dict[str, object]] = []
    gone: dict[int, list[str]] = {}
    gone_ids: list[int] = []
    for unit in units:
        acc_id = ids[unit.number]
        current = directory.phones.get(acc_id, {})
        add.extend({"account_id": acc_id, "e164": e164} for e164 in unit.phones - current.keys())
        removed = [e164 for e164 in current if e164 not in unit.phones and unit.replace_phones]
        if removed:
            gone[acc_id] = removed
            gone_ids.extend(current[e164] for e164 in removed)
    if gone_ids:
        session.execute(delete(Phone).where(Phone.id.in_(gone_ids)))
        counts.phones_removed = len(gone_ids)
    new_phones: list[tuple[int, str, int]] = []
    if add:
        stmt = insert(Phone).returning(Phone.account_id, Phone.e164, Phone.id)
        rows = session.execute(stmt, add, execution_options=BULK)
        new_phones = [(acc_id, e164, phone_id) for acc_id, e164, phone_id in rows]
        counts.phones_added = len(add)
    return new_phones, gone


def meter_registers(
    session: Session, serials: Iterable[str] | None = None
) -> dict[str, tuple[int, int, int]]:
    """Serial -> (meter id, integer digits, decimal digits), for every meter or the given ones."""
    stmt = select(Meter.serial, Meter.id, Meter.integer_digits, Meter.decimal_digits)
    if serials is not None:
        stmt = stmt.where(Meter.serial.in_(list(serials)))
    return {
        serial: (meter_id, ints, decs) for serial, meter_id, ints, decs in session.execute(stmt)
    }


def refresh_statistics(session: Session, tables: Iterable[str]) -> None:
    """ANALYZE after a bulk load on PostgreSQL, so the planner does not scan for phones by caller.

    Autovacuum would get there, minutes later; until then fresh tables have no statistics.
    """
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in tables:
        if table not in ("accounts", "meters", "phones", "readings"):
            raise ValueError(f"not a table of ours: {table!r}")
        session.execute(text(f"ANALYZE {table}"))
    session.commit()

""" "A call comes in" on the hot path: every read it needs in one round trip.

Before the flow runs, the webhook knows the CallSid, the caller's number and the period, so
it sends at once (PostgreSQL: one psycopg pipeline; SQLite: one after another):

1. the call with this CallSid (a Twilio retry is answered with the stored reply);
2. the caller's hourly-limit hit (`storage.counters.take_statement`: one atomic upsert);
3. the accounts bound to the number with their meters, the period's current accepted
   readings of those meters and the rules' history of earlier periods (at most
   `HISTORY_LIMIT` per meter): three reads joined on `phones.e164`, so no meter id has to
   be known first. They are what `ivr.voice.directory.SqlDirectory.accounts_for_phone`
   reads with three Core statements (`BY_PHONE`, `ledger.current_readings`,
   `ledger.rules_history`), in the same order, converted by the same column types.

Then the step's write is one more round trip (`storage.steps`). The statements are texts
written once (SQLAlchemy's Core would build each statement, and compile its cache key, on
every request: most of the webhook's database CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Engine, Table

from storage import counters
from storage.ledger import HISTORY_LIMIT
from storage.models import Account, Meter, Reading
from storage.steps import CallRow, StepStore, _load_sql

Row = tuple[Any, ...]
_ACCOUNTS, _METERS, _READINGS = (cast(Table, t.__table__) for t in (Account, Meter, Reading))
# BY_PHONE's columns (ivr.voice.directory), and the ledger's (storage.ledger.LedgerReading).
ACCOUNT_COLUMNS = (
    ("accounts", ("id", "number", "address", "supplier")),
    ("meters", ("id", "serial", "kind", "unit", "integer_digits", "decimal_digits", "location",
                "verification_due", "active")),
)  # fmt: skip
READING_COLUMNS = ("id", "meter_id", "value", "taken_at", "period", "status", "source",
                   "replaced_by_id")  # fmt: skip
# What counts for billing: the ledger's IS_CURRENT (and the partial unique index's condition).
_CURRENT = "readings.status = 'accepted' AND readings.replaced_by_id IS NULL"


@dataclass(frozen=True)
class PhoneRows:
    """The directory's rows for one number and period, converted as SQLAlchemy would."""

    e164: str
    period: str
    accounts: list[Row]  # ACCOUNT_COLUMNS, by account number (meter columns None: no meter)
    current: list[Row]  # READING_COLUMNS: the period's current readings
    history: list[Row]  # READING_COLUMNS: per meter, newest first, at most HISTORY_LIMIT


@dataclass(frozen=True)
class Incoming:
    """What "a call comes in" read: the call if it exists, whether the hourly limit counted
    this call, and the caller's directory rows (None for a withheld number)."""

    call: CallRow | None
    counted: bool
    phone: PhoneRows | None


class IncomingStore:
    """The incoming webhook's reads for one engine's dialect."""

    def __init__(self, engine: Engine, steps: StepStore):
        self.steps = steps
        self.pg = steps.pg
        self.dialect = engine.dialect
        self._accounts_cast = self._casts(
            [_ACCOUNTS.c[c] for c in ACCOUNT_COLUMNS[0][1]]
            + [_METERS.c[c] for c in ACCOUNT_COLUMNS[1][1]]
        )
        self._readings_cast = self._casts([_READINGS.c[c] for c in READING_COLUMNS])

    def read(self, conn: Connection, call_sid: str, bucket: tuple[str, int], now: datetime,
             window: timedelta, phone: tuple[str, str] | None) -> Incoming:  # fmt: skip
        """One round trip: the call, the hit on `bucket` (key, limit) in `window`, and, for
        `phone` (e164, period), the directory's rows. The hit is counted even when the call
        exists: the caller gives it back (`give_back`), a retry being rare."""
        m = self.steps.mark
        key, limit = bucket
        statements = [(_load_sql(m), [call_sid]),
                      counters.take_statement(self.pg, key, now, window, limit)]  # fmt: skip
        if phone is not None:
            e164, period = phone
            statements += [(_accounts_sql(m), [e164]), (_current_sql(m), [e164, period]),
                           (_history_sql(m), [e164, period, HISTORY_LIMIT])]  # fmt: skip
        results = self.steps.fetch_each(conn, statements)
        call = CallRow(*results[0][0]) if results[0] else None
        rows = None
        if phone is not None:
            rows = PhoneRows(
                phone[0], phone[1],
                accounts=[self._accounts_cast(r) for r in results[2]],
                current=[self._readings_cast(r) for r in results[3]],
                history=[self._readings_cast(r) for r in results[4]],
            )  # fmt: skip
        return Incoming(call, bool(results[1]), rows)

    def give_back(self, conn: Connection, key: str) -> None:
        """Uncount the hit `read` counted (the call existed: Twilio retried)."""
        self.steps.fetch_each(conn, [counters.give_back_statement(self.pg, key)])

    def _casts(self, columns: list[ColumnElement[Any]]) -> Callable[[Row], Row]:
        """A row's values converted by its columns' types, as a Core result would (UTC
        datetimes, exact decimals; SQLite's text dates and integer booleans)."""
        # psycopg's numeric processor asks for the column's type code: NUMERIC's OID, 1700
        # (the only numeric column read here is the reading's value).
        codes = {"value": 1700} if self.pg else {}
        processors = [
            c.type.dialect_impl(self.dialect).result_processor(self.dialect, codes.get(c.name))
            for c in columns
        ]
        active = [(i, p) for i, p in enumerate(processors) if p is not None]

        def convert(row: Row) -> Row:
            values = list(row)
            for i, process in active:
                values[i] = process(values[i])
            return tuple(values)

        return convert


def _columns(table: str, names: tuple[str, ...]) -> str:
    return ", ".join(f"{table}.{n}" for n in names)


@cache
def _accounts_sql(m: str) -> str:
    """BY_PHONE (ivr.voice.directory) as text."""
    columns = ", ".join(_columns(t, names) for t, names in ACCOUNT_COLUMNS)
    return (f"SELECT {columns} FROM accounts LEFT OUTER JOIN meters ON meters.account_id = "
            f"accounts.id JOIN phones ON phones.account_id = accounts.id WHERE phones.e164 = {m} "
            "ORDER BY accounts.number")  # fmt: skip


_PHONE_READINGS = ("FROM readings JOIN meters ON meters.id = readings.meter_id "
                   "JOIN phones ON phones.account_id = meters.account_id")  # fmt: skip


@cache
def _current_sql(m: str) -> str:
    """ledger.current_readings of the number's meters."""
    return (f"SELECT {_columns('readings', READING_COLUMNS)} {_PHONE_READINGS} "
            f"WHERE phones.e164 = {m} AND readings.period = {m} AND {_CURRENT}")  # fmt: skip


@cache
def _history_sql(m: str) -> str:
    """ledger.rules_history of the number's meters: per meter the newest `limit`, newest
    first (the directory turns them oldest first)."""
    inner = (f"SELECT {_columns('readings', READING_COLUMNS)}, row_number() OVER (PARTITION BY "
             f"readings.meter_id ORDER BY readings.taken_at DESC, readings.id DESC) AS n "
             f"{_PHONE_READINGS} WHERE phones.e164 = {m} AND readings.period < {m} "
             f"AND {_CURRENT}")  # fmt: skip
    return (f"SELECT {', '.join(READING_COLUMNS)} FROM ({inner}) AS h WHERE n <= {m} "
            "ORDER BY meter_id, taken_at DESC, id DESC")  # fmt: skip

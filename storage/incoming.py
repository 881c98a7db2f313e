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

PostgreSQL gets three statements: the call and the hit in one (a data-modifying CTE), the
accounts, and the readings meter by meter (LATERAL, so the plan follows the meters' index
whatever the planner guesses of a period's rows); a fourth before them lets the count commit
without waiting for the disk (`_COUNT_WITHOUT_WAITING`). SQLite gets five cheap ones, the count
given back if a read after it fails. Then the step's write is one more round trip
(`storage.steps`): two for an incoming call on PostgreSQL, where there were seven. The
statements are texts written once (SQLAlchemy's Core would build each statement, and
compile its cache key, on every request: most of the webhook's database CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Engine, Table

from storage import counters
from storage.ledger import HISTORY_LIMIT
from storage.models import Account, Meter, Reading
from storage.steps import CALL_COLUMNS, WITHOUT_WAITING, CallRow, StepStore, _load_sql

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
        key, limit = bucket
        take = counters.take_statement(self.pg, key, now, window, limit)
        if self.pg:
            return self._read_pg(conn, call_sid, take, phone)
        m = self.steps.mark
        # SQLite commits the count on its own: the other reads run after it, and a failure
        # there gives the count back.
        load, hit = self.steps.fetch_each(conn, [(_load_sql(m), [call_sid]), take])
        call, counted = (CallRow(*load[0]) if load else None), bool(hit)
        if phone is None:
            return Incoming(call, counted, None)
        e164, period = phone
        reads: list[tuple[str, list[Any]]] = [
            (_accounts_sql(m), [e164]),
            (_current_sql(m), [e164, period]),
            (_history_sql(m), [e164, period, HISTORY_LIMIT]),
        ]
        try:
            accounts, current, history = self.steps.fetch_each(conn, reads)
            rows = self._rows(phone, accounts, current, history)
        except Exception:
            if counted:  # what failed after the count is no call: its place is given back
                with suppress(Exception):
                    self.give_back(conn, key)
            raise
        return Incoming(call, counted, rows)

    def _read_pg(self, conn: Connection, call_sid: str, take: tuple[str, list[Any]],
                 phone: tuple[str, str] | None) -> Incoming:  # fmt: skip
        """PostgreSQL: the call and the hit in one statement, the accounts, and the current
        readings with the history in one more; all in one pipeline, which is one implicit
        transaction (a single Sync): a failure in it counts nothing. The transaction commits
        without waiting for the WAL's flush (`_COUNT_WITHOUT_WAITING`)."""
        statements = [(_COUNT_WITHOUT_WAITING, []),
                      (_pg_call_and_hit_sql(take[0]), [*take[1], call_sid])]  # fmt: skip
        if phone is not None:
            e164, period = phone
            statements += [(_accounts_sql("%s"), [e164]),
                           (_pg_readings_sql(), [period, period, HISTORY_LIMIT, e164])]  # fmt: skip
        results = self.steps.fetch_each(conn, statements)[1:]
        head = results[0][0]
        call = None if head[0] is None else CallRow(*head[:-1])
        counted = head[-1] is not None
        if phone is None:
            return Incoming(call, counted, None)
        try:
            period = phone[1]
            readings = results[2]
            current = [r for r in readings if r[4] == period]
            history = [r for r in readings if r[4] != period]
            rows = self._rows(phone, results[1], current, history)
        except Exception:
            if counted:  # see read: the count committed with the pipeline
                with suppress(Exception):
                    self.give_back(conn, take[1][0])  # the key
            raise
        return Incoming(call, counted, rows)

    def _rows(self, phone: tuple[str, str], accounts: list[Row], current: list[Row],
              history: list[Row]) -> PhoneRows:  # fmt: skip
        return PhoneRows(
            phone[0], phone[1],
            accounts=[self._accounts_cast(r) for r in accounts],
            current=[self._readings_cast(r) for r in current],
            history=[self._readings_cast(r) for r in history],
        )  # fmt: skip

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


# The count's transaction commits without waiting for the disk (PostgreSQL's asynchronous
# commit, for this transaction only). A count lost in a crash is one call fewer in a caller's
# hourly limit; waiting cost the greeting a flush of the WAL, which under write load took
# 20-300 ms (docs/benchmarks.md, round six). The call's own write commits the same way unless
# it raises a flag (storage.steps, WITHOUT_WAITING).
_COUNT_WITHOUT_WAITING = f"SELECT {WITHOUT_WAITING}"


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
    # The number's meters as a subquery: a join let SQLite's planner start from the period's
    # index and read every reading of the month.
    return (f"SELECT {_columns('readings', READING_COLUMNS)} FROM readings WHERE "
            f"readings.meter_id IN (SELECT meters.id FROM meters JOIN phones ON "
            f"phones.account_id = meters.account_id WHERE phones.e164 = {m}) "
            f"AND readings.period = {m} AND {_CURRENT}")  # fmt: skip


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


@cache
def _pg_call_and_hit_sql(take: str) -> str:
    """PostgreSQL: the call (its columns NULL if there is none) and the hit's new count (NULL
    if the window was full) as one row of one statement; the hit is a data-modifying CTE,
    run whether or not the call exists."""
    columns = ", ".join("calls." + c for c in CALL_COLUMNS)
    return (f"WITH hit AS ({take}) SELECT {columns}, (SELECT count FROM hit) FROM "
            "(SELECT 1 AS one) AS one LEFT JOIN calls ON calls.call_sid = %s")  # fmt: skip


@cache
def _pg_readings_sql() -> str:
    """PostgreSQL: per meter of the number, its current reading of the period and its rules
    history (the newest HISTORY_LIMIT of earlier periods), looked up meter by meter (LATERAL:
    the index on readings' meter, whatever the planner guesses of the period's rows)."""
    cols = _columns("readings", READING_COLUMNS)
    mine = f"readings.meter_id = meters.id AND {_CURRENT}"
    return (f"SELECT {', '.join('r.' + c for c in READING_COLUMNS)} FROM phones "
            "JOIN meters ON meters.account_id = phones.account_id CROSS JOIN LATERAL ("
            f"(SELECT {cols} FROM readings WHERE {mine} AND readings.period = %s) UNION ALL "
            f"(SELECT {cols} FROM readings WHERE {mine} AND readings.period < %s "
            "ORDER BY readings.taken_at DESC, readings.id DESC LIMIT %s)) AS r "
            "WHERE phones.e164 = %s ORDER BY r.meter_id, r.taken_at DESC, r.id DESC")  # fmt: skip

"""A call's webhooks on the hot path: prebuilt SQL on the driver's cursor, no ORM.

A webhook reads its call with one statement (`StepStore.load`) and writes the whole step in
one transaction: the conditional `UPDATE calls … WHERE seq = N` carries every column the step
changes, and only if it claimed the step do the timeline rows, flags and the reply go in, each
table as one multi-row INSERT. "A call comes in" inserts the call already at its first step
(the unique CallSid settles a duplicated request), and the status callback's UPDATE claims the
call's end (`outcome IS NULL`) the same way.

- PostgreSQL, a step that stores no reading: one statement, a data-modifying CTE, in
  autocommit (no BEGIN, no COMMIT): one round trip for the write.
- PostgreSQL, a step that stores a reading: BEGIN and the claim go in one pipeline, then the
  ledger's own statements (`storage.ledger`, on the same connection and transaction), then the
  rows and COMMIT in one more pipeline.
- SQLite: BEGIN IMMEDIATE, the same UPDATE, the same INSERTs, COMMIT; a step that stores a
  reading or raises a flag syncs the WAL to disk after its commit, the others do not
  (`sync_wal`).

The connection comes from an engine in autocommit mode (`storage.db.make_webhook_engine`):
the transaction is ours to open. Statement texts are built once per shape (which columns
change, how many rows) and cached; psycopg prepares the repeated ones on the server itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from storage import ledger
from storage.ledger import LedgerReading

CALL_COLUMNS = ("id", "call_sid", "caller", "account_id", "state", "seq", "outcome", "input_modes")
EVENT_COLUMNS = ("call_id", "at", "seq", "kind", "text", "meter_id", "confidence", "audio_file")
FLAG_COLUMNS = ("call_id", "reason", "detail", "meter_id", "account_id", "reading_id", "status",
                "created_at", "note")  # fmt: skip
# Casts for PostgreSQL's VALUES lists, whose parameters would otherwise arrive as text.
_PG_TYPES = {"call_id": "int", "at": "timestamptz", "seq": "int", "kind": "varchar",
             "text": "text", "meter_id": "int", "confidence": "float8", "audio_file": "varchar",
             "reason": "varchar", "detail": "text", "account_id": "int", "reading_id": "int",
             "status": "varchar", "created_at": "timestamptz", "note": "text"}  # fmt: skip
CHANGEABLE = ("account_id", "outcome", "input_modes", "ended_at")


@dataclass(frozen=True)
class CallRow:
    """The columns of a call that a step reads."""

    id: int
    call_sid: str
    caller: str
    account_id: int | None
    state: str
    seq: int
    outcome: str | None
    input_modes: str


@dataclass(frozen=True)
class EventRow:
    """One timeline row (`call_events`) of the step."""

    kind: str
    text: str
    meter_id: int | None = None
    confidence: float | None = None
    audio_file: str | None = None


@dataclass(frozen=True)
class FlagRow:
    """One flag the step raises."""

    reason: str
    detail: str
    meter_id: int | None = None
    account_id: int | None = None
    reading_id: int | None = None


@dataclass(frozen=True)
class Head:
    """The statement that claims a step's write (`claimed` returns the call's id when it does):
    the seq claim, the new call's INSERT, or the status callback's UPDATE."""

    sql: str
    params: list[Any]
    inserts_call: bool = False  # the new call's INSERT (on SQLite its id is the lastrowid)


@dataclass
class StepWrite:
    """Everything step `seq` of call `call_id` writes; `changes` holds the other columns of
    `calls` that changed (CHANGEABLE)."""

    call_id: int
    seq: int
    state: str
    reply: str
    at: datetime
    changes: dict[str, Any] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    flags: list[FlagRow] = field(default_factory=list)
    durable: bool = False  # SQLite: once committed, the WAL is synced before the reply


class StepStore:
    """The hot path's statements for one engine's dialect (PostgreSQL or SQLite)."""

    def __init__(self, engine: Engine,
                 waiting: Callable[[], AbstractContextManager[Any]] = nullcontext):  # fmt: skip
        """`waiting`: what to wrap a wait for the disk in (the webhooks' gate steps out for it,
        ivr.voice.gate: a sync is no turn's work)."""
        self.waiting = waiting
        self.pg = engine.dialect.name == "postgresql"
        self.mark = "%s" if self.pg else "?"
        self.dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._wal: str | None = None  # SQLite: the WAL file's path, once asked (`_wal_of`)

    # --- reading ---

    def load(self, conn: Connection, call_sid: str) -> CallRow | None:
        """The call with this CallSid, by one prebuilt statement."""
        row = self._run(conn, [(_load_sql(self.mark), [call_sid])]).fetchone()
        return None if row is None else CallRow(*row)

    def reply(self, conn: Connection, call_id: int, seq: int) -> str | None:
        """The stored reply of a step, for a replay."""
        sql = f"SELECT twiml FROM call_replies WHERE call_id = {self.mark} AND seq = {self.mark}"
        row = self._run(conn, [(sql, [call_id, seq])]).fetchone()
        return None if row is None else str(row[0])

    # --- heads: what claims a write ---

    def step_claim(self, step: StepWrite) -> Head:
        """Step `seq` of the call, unless another request took it."""
        columns = tuple(sorted(step.changes))
        values = [self._value(step.changes[c]) for c in columns]
        params = [step.seq + 1, step.state, *values, step.call_id, step.seq]
        return Head(_claim_sql(self.mark, columns), params)

    def new_call(self, step: StepWrite, call_sid: str, caller: str) -> Head:
        """The call inserted at its first step; a second "a call comes in" for the same
        CallSid fails on the unique key (IntegrityError). (The hourly limit is counted
        before, by `storage.counters`.)"""
        m = self.mark
        outcome = step.changes.get("outcome")
        sql = (f"INSERT INTO calls (call_sid, caller, account_id, state, seq, started_at, "
               f"outcome, input_modes) VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, '')")  # fmt: skip
        at = self._value(step.at)
        params = [call_sid, caller, step.changes.get("account_id"), step.state, step.seq + 1,
                  at, outcome]  # fmt: skip
        if self.pg:
            sql += " RETURNING id)"  # the CTE's head closes itself (see _pg_cte_sql)
        return Head(sql, params, inserts_call=True)

    def call_end(self, step: StepWrite, outcome: str | None) -> Head:
        """The call's end: `ended_at` unless set; with `outcome`, only while it has none."""
        m = self.mark
        sets = f"ended_at = COALESCE(ended_at, {m})"
        params = [self._value(step.at)]
        where = f"id = {m}"
        if outcome is not None:
            sets += f", outcome = {m}"
            params.append(outcome)
            where += " AND outcome IS NULL"
        return Head(f"UPDATE calls SET {sets} WHERE {where}", [*params, step.call_id])

    def close_finished(self, conn: Connection, call_sid: str, status: str, at: datetime) -> bool:
        """The status callback of a call whose flow finished (it has an outcome): `ended_at`
        unless set, and the status on its timeline, in one statement, committed without
        waiting for the disk (it raises no flag; see `WITHOUT_WAITING`). False (nothing
        written) when there is no such call or its flow never finished: the caller then
        reads the call and closes it the long way. PostgreSQL only (a round trip saved)."""
        assert self.pg
        row = self._run(conn, [(_PG_CLOSE_FINISHED, [at, call_sid, status])]).fetchone()
        return bool(row and row[0])

    # --- writing ---

    def write(self, conn: Connection, head: Head, step: StepWrite, reply: bool = True) -> bool:
        """Claim with `head` and write the step's rows (and `reply`), all or nothing; False
        if the head claimed nothing. PostgreSQL: one statement, one round trip, which waits
        for the WAL's flush only when the step raises a flag (`WITHOUT_WAITING`)."""
        if self.pg:
            sql, params = self._pg_cte(head, step, reply)
            row = self._run(conn, [(sql, params)]).fetchone()
            return bool(row and row[0])
        if not self.claim(conn, head, step, durable=bool(step.flags)):
            return False
        self.finish(conn, step, reply)
        return True

    def claim(self, conn: Connection, head: Head, step: StepWrite, durable: bool = True) -> bool:
        """Open the transaction and claim with `head`; False (rolled back) if it claimed
        nothing. The caller then writes what needs the database's answers (the ledger) and
        calls `finish`, or `rollback`. A `durable` transaction (a reading's, a flag's) is on
        disk before `finish` returns: on PostgreSQL its COMMIT waits for the WAL's flush, on
        SQLite `finish` syncs the WAL (`sync_wal`)."""
        begin: tuple[str, list[Any]] = ("BEGIN" if self.pg else "BEGIN IMMEDIATE", [])
        step.durable = durable
        cursor = self._run(conn, [begin, (head.sql, head.params)])
        if cursor.rowcount == 1:
            if head.inserts_call and not self.pg:  # a new call: its id
                step.call_id = int(cursor.lastrowid)
            return True
        self.rollback(conn)
        return False

    def claim_reading(
        self, conn: Connection, head: Head, step: StepWrite, meter_id: int, period: str
    ) -> tuple[int, list[LedgerReading]] | None:
        """Open the transaction, claim the step with `head`, take the meter's ledger lock and
        read what a store looks at (`ledger.open_rows`), with an id for the new reading;
        None (rolled back) if the claim took nothing. PostgreSQL: one round trip, a pipeline
        (each statement after the lock sees what its holders committed: a new snapshot per
        statement); SQLite: BEGIN IMMEDIATE is the lock, and the next id is max + 1."""
        m = self.mark
        if self.pg:
            lock = ("SELECT nextval(pg_get_serial_sequence('readings', 'id')) FROM meters "
                    "WHERE id = %s FOR NO KEY UPDATE", [meter_id])  # fmt: skip
        else:
            lock = ("SELECT coalesce(max(id), 0) + 1 FROM readings", [])
        statements = [("BEGIN" if self.pg else "BEGIN IMMEDIATE", []), (head.sql, head.params),
                      lock, (ledger.open_rows_sql(m), [meter_id, period])]  # fmt: skip
        step.durable = True  # a reading is on disk before the caller hears it accepted
        claim, ids, rows = self._run(conn, statements, results=(1, 2, 3))
        if claim.rowcount != 1:
            self.rollback(conn)
            return None
        reading_id = ids.fetchone()[0]
        return int(reading_id), [self._ledger_row(row) for row in rows.fetchall()]

    def reading_statements(
        self, new: ledger.NewReading, reading_id: int, plan: ledger.StorePlan
    ) -> list[tuple[str, list[Any]]]:
        """The ledger's statements for `plan`, in this driver's terms (for `finish`)."""
        return ledger.plan_statements(new, reading_id, plan, self.mark, self._bind)

    def finish(self, conn: Connection, step: StepWrite, reply: bool = True,
               before: Sequence[tuple[str, list[Any]]] = ()) -> None:  # fmt: skip
        """Run `before` (the ledger's writes), insert the step's rows and commit
        (PostgreSQL: in one round trip)."""
        self._run(conn, [*before, *self._rows(step, reply), ("COMMIT", [])])
        if step.durable and not self.pg:
            wal = self._wal_of(conn)
            if wal:
                with self.waiting():
                    sync_wal(wal)

    def _wal_of(self, conn: Connection) -> str:
        """The path of the database's WAL file, as SQLite names the database's own file ("" for
        a database in memory, which has none)."""
        if self._wal is None:
            rows = _raw(conn).execute("PRAGMA database_list").fetchall()
            file = next((row[2] for row in rows if row[1] == "main"), "")
            self._wal = f"{file}-wal" if file else ""
        return self._wal

    def rollback(self, conn: Connection) -> None:
        """Give the open transaction up."""
        _raw(conn).rollback()

    def _run(self, conn: Connection, statements: list[tuple[str, list[Any]]],
             results: tuple[int, ...] = ()) -> Any:  # fmt: skip
        """Execute in order on the driver's cursor; the cursor of the last one, or (with
        `results`) a cursor each for those statements. On PostgreSQL several go as one
        pipeline (one round trip). Driver errors come out as SQLAlchemy's, marked
        `connection_invalidated` when the connection died."""
        raw = _raw(conn)
        cursor = raw.cursor()
        kept = []
        try:
            if self.pg and len(statements) > 1:
                with raw.pipeline():
                    for n, (sql, params) in enumerate(statements):
                        if n in results:  # a pipelined cursor keeps only its last result
                            cursor = raw.cursor()
                            kept.append(cursor)
                        cursor.execute(sql, params)
            else:
                for n, (sql, params) in enumerate(statements):
                    if n in results:
                        # sqlite3's fetch reads on: each result needs its own cursor, fetched
                        # before the next statement runs on it.
                        cursor = raw.cursor()
                        kept.append(cursor)
                    cursor.execute(sql, params)
                    if n in results and not self.pg:
                        kept[-1] = _Fetched(cursor)
        except self.dbapi_error as exc:
            dead = bool(self.pg and (raw.closed or raw.broken))
            if dead:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                statements[-1][0], None, exc, self.dbapi_error, connection_invalidated=dead
            ) from exc
        return kept if results else cursor

    def _ledger_row(self, row: Sequence[Any]) -> LedgerReading:
        """A `readings` row as the ledger reads it (what ExactDecimal and UTCDateTime do)."""
        rid, meter_id, value, taken_at, period, status, source, replaced_by_id = row
        if isinstance(taken_at, str):
            taken_at = datetime.fromisoformat(taken_at)
        taken_at = taken_at.replace(tzinfo=UTC) if taken_at.tzinfo is None else taken_at
        return LedgerReading(rid, meter_id, Decimal(str(value)).normalize() + Decimal(0),
                             taken_at.astimezone(UTC), period, status, source,
                             replaced_by_id)  # fmt: skip

    def _bind(self, value: Any) -> Any:
        """A value as the driver takes it for our columns (ExactDecimal on SQLite is text)."""
        if isinstance(value, Decimal) and not self.pg:
            return format(value.normalize(), "f")
        return self._value(value)

    def fetch_each(self, conn: Connection, statements: list[tuple[str, list[Any]]]
                   ) -> list[list[Any]]:  # fmt: skip
        """Execute in order, as `_run` does (PostgreSQL: one pipeline, one round trip); the
        rows of every statement, each of which must return rows."""
        every = tuple(range(len(statements)))
        return [result.fetchall() for result in self._run(conn, statements, results=every)]

    # --- statements ---

    def _event_params(self, step: StepWrite) -> list[Any]:
        at = self._value(step.at)
        rows = [(step.call_id, at, step.seq, e.kind, e.text, e.meter_id, e.confidence,
                 e.audio_file) for e in step.events]  # fmt: skip
        return [value for row in rows for value in row]

    def _flag_params(self, step: StepWrite) -> list[Any]:
        at = self._value(step.at)
        rows = [(step.call_id, f.reason, f.detail, f.meter_id, f.account_id, f.reading_id, "open",
                 at, "") for f in step.flags]  # fmt: skip
        return [value for row in rows for value in row]

    def _rows(self, step: StepWrite, reply: bool) -> list[tuple[str, list[Any]]]:
        m = self.mark
        out = []
        if reply:
            out.append((f"INSERT INTO call_replies (call_id, seq, twiml) VALUES ({m}, {m}, {m})",
                        [step.call_id, step.seq, step.reply]))  # fmt: skip
        if self.pg:  # the call, moment and step once, not per row: fewer parameters
            if step.events:
                head = [step.call_id, step.at, step.seq]
                out.append((_pg_rows_sql("call_events", len(step.events)),
                            head + self._pg_event_params(step)))  # fmt: skip
            if step.flags:
                out.append((_pg_rows_sql("flags", len(step.flags)),
                            [step.call_id, step.at, *self._pg_flag_params(step)]))  # fmt: skip
            return out
        if step.events:
            out.append((_insert_sql(m, "call_events", EVENT_COLUMNS, len(step.events)),
                        self._event_params(step)))  # fmt: skip
        if step.flags:
            out.append((_insert_sql(m, "flags", FLAG_COLUMNS, len(step.flags)),
                        self._flag_params(step)))  # fmt: skip
        return out

    def _pg_cte(self, head: Head, step: StepWrite, reply: bool) -> tuple[str, list[Any]]:
        sql = _pg_cte_sql(head.sql, head.inserts_call, reply, len(step.events), len(step.flags),
                          durable=bool(step.flags))  # fmt: skip
        params = [step.at, *head.params]
        if reply:
            params += [step.seq, step.reply]
        params += [p for e in step.events for p in (step.seq, e.kind, e.text, e.meter_id,
                                                    e.confidence, e.audio_file)]  # fmt: skip
        return sql, params + self._pg_flag_params(step)

    @staticmethod
    def _pg_event_params(step: StepWrite) -> list[Any]:
        return [p for e in step.events
                for p in (e.kind, e.text, e.meter_id, e.confidence, e.audio_file)]  # fmt: skip

    @staticmethod
    def _pg_flag_params(step: StepWrite) -> list[Any]:
        return [p for f in step.flags
                for p in (f.reason, f.detail, f.meter_id, f.account_id, f.reading_id)]  # fmt: skip

    def _value(self, value: Any) -> Any:
        if isinstance(value, datetime) and not self.pg:
            return sqlite_timestamp(value)
        return value


def sqlite_timestamp(moment: datetime) -> str:
    """A UTC moment as SQLAlchemy's DateTime stores it on SQLite (what `UTCDateTime` reads)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class _Fetched:
    """A SQLite result read at once (its cursor runs the next statement)."""

    def __init__(self, cursor: Any):
        self.rowcount = cursor.rowcount
        self._rows = cursor.fetchall()

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


def _raw(conn: Connection) -> Any:
    return conn.connection.dbapi_connection


@cache
def _load_sql(mark: str) -> str:
    return f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE call_sid = {mark}"


@cache
def _claim_sql(mark: str, columns: tuple[str, ...]) -> str:
    sets = ", ".join([f"seq = {mark}", f"state = {mark}", *(f"{c} = {mark}" for c in columns)])
    return f"UPDATE calls SET {sets} WHERE id = {mark} AND seq = {mark}"


@cache
def _insert_sql(mark: str, table: str, columns: Sequence[str], rows: int) -> str:
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([row] * rows)


@cache
def _pg_cte_sql(head: str, inserts_call: bool, reply: bool, events: int, flags: int,
                durable: bool = True) -> str:  # fmt: skip
    """The whole write as one statement: nothing is inserted unless the head claimed the
    call. The first parameter is the step's moment (every row's timestamp). Unless `durable`,
    the statement's own transaction commits without waiting for the disk (`WITHOUT_WAITING`)."""
    if not inserts_call:  # the new call's INSERT brings its RETURNING and closes itself
        head += " RETURNING id)"
    parts = [f"WITH moment AS (SELECT %s::timestamptz AS at), claimed AS ({head}"]
    if reply:
        parts.append("reply AS (INSERT INTO call_replies (call_id, seq, twiml) "
                     "SELECT id, %s, %s FROM claimed)")  # fmt: skip
    if events:
        cols = ("seq", "kind", "text", "meter_id", "confidence", "audio_file")
        values = _pg_values(cols, events)
        parts.append(
            f"events AS (INSERT INTO call_events ({', '.join(EVENT_COLUMNS)}) "
            f"SELECT claimed.id, moment.at, {', '.join('v.' + c for c in cols)} "
            f"FROM claimed, moment, (VALUES {values}) AS v(n, {', '.join(cols)}) ORDER BY v.n)"
        )
    if flags:
        flag_cols = ("reason", "detail", "meter_id", "account_id", "reading_id")
        values = _pg_values(flag_cols, flags)
        parts.append(
            f"flags AS (INSERT INTO flags ({', '.join(FLAG_COLUMNS)}) "
            f"SELECT claimed.id, {', '.join('v.' + c for c in flag_cols)}, 'open', moment.at, '' "
            f"FROM claimed, moment, (VALUES {values}) AS v(n, {', '.join(flag_cols)}) ORDER BY v.n)"
        )
    if durable:
        return ", ".join(parts) + " SELECT count(*) FROM claimed"
    # set_config(…, true) lasts to the end of the statement's own (implicit) transaction and is
    # read at its commit; it is volatile, so it runs once, on the claimed row, never inlined away.
    return ", ".join(parts) + f" SELECT count(*) FROM claimed WHERE {WITHOUT_WAITING} IS NOT NULL"


def _pg_values(columns: Sequence[str], rows: int) -> str:
    row = ", ".join(f"%s::{_PG_TYPES[c]}" for c in columns)
    return ", ".join(f"({n}, {row})" for n in range(rows))


@cache
def _pg_rows_sql(table: str, rows: int) -> str:
    """A step's timeline rows (parameters: call id, moment, seq, then 5 per row) or flags
    (call id, moment, then 5 per row), inserted in order. Psycopg caches the conversion of a
    statement of at most 50 parameters only: the call, the moment and the step go in once."""
    if table == "call_events":
        cols = ("kind", "text", "meter_id", "confidence", "audio_file")
        values = ", ".join("v." + c for c in cols)
        return (f"INSERT INTO call_events ({', '.join(EVENT_COLUMNS)}) SELECT %s::int, "
                f"%s::timestamptz, %s::int, {values} FROM (VALUES {_pg_values(cols, rows)}) "
                f"AS v(n, {', '.join(cols)}) ORDER BY v.n")  # fmt: skip
    cols = ("reason", "detail", "meter_id", "account_id", "reading_id")
    values = ", ".join("v." + c for c in cols)
    return (f"INSERT INTO flags ({', '.join(FLAG_COLUMNS)}) SELECT %s::int, {values}, 'open', "
            f"%s::timestamptz, '' FROM (VALUES {_pg_values(cols, rows)}) "
            f"AS v(n, {', '.join(cols)}) ORDER BY v.n")  # fmt: skip


# Which of the hot path's PostgreSQL writes wait for the WAL's flush before the reply goes
# out: every one that stores a reading (the ledger's transaction: «Принято» is said of a
# reading on disk) or raises a flag (an operator's work: a reading refused, a dropped call, a
# request to talk). The others only move the dialogue on (the state, the timeline of prompts,
# the stored reply for a replay, the call's end) and commit asynchronously, for their own
# transaction only (PostgreSQL's synchronous_commit, docs/deploy.md): they are visible to
# every other connection at once, atomic as before, settle races on `seq` as before, and a
# crash of the database server can lose at most the last fraction of a second of them
# (wal_writer_delay x 3), never a reading (the WAL is written in order: a reading's flush
# flushes every step before it). A lost step leaves its call a step behind: the call's next
# webhook is refused with the apology that says what the call saved (ivr.voice.calls, `fail`)
# and a system_error flag. Under write load a flush waited for took up to hundreds of
# milliseconds on our machines (docs/benchmarks.md, round seven).
WITHOUT_WAITING = "set_config('synchronous_commit', 'off', true)"


def sync_wal(wal: str) -> None:
    """Sync SQLite's WAL file to disk, after a commit made without syncing it.

    The webhooks' SQLite connections commit with synchronous=NORMAL (storage.db): the commit
    has written its frames to the WAL, but a power cut could still take them. Syncing at the
    commit (FULL) would do it while holding the database's only write lock, so every other
    worker would wait for the disk too (a fifth more CPU a webhook at saturation, and a
    quarter less throughput, in round seven: docs/benchmarks.md). Syncing the same file
    just after the commit makes the transaction as durable, with the lock already free.

    It is sound because the WAL is only ever appended to until a checkpoint has copied it
    into the database file and synced that file (which NORMAL does at every checkpoint): our
    frames are either still in the WAL, which this syncs (fsync works on the file, whoever
    wrote it), or already in a synced database file. No WAL file means the last connection
    closed after such a checkpoint. SQLite has no call for "sync what was committed", hence
    this function.
    """
    try:
        fd = os.open(wal, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


_PG_CLOSE_FINISHED = (
    "WITH moment AS (SELECT %s::timestamptz AS at), closed AS (UPDATE calls SET ended_at = "
    "COALESCE(ended_at, (SELECT at FROM moment)) WHERE call_sid = %s AND outcome IS NOT NULL "
    "RETURNING id, seq), events AS (INSERT INTO call_events (call_id, at, seq, kind, text) "
    "SELECT closed.id, moment.at, closed.seq, 'status', %s::text FROM closed, moment) "
    f"SELECT count(*) FROM closed WHERE {WITHOUT_WAITING} IS NOT NULL"
)

"""The readings ledger: the one owner of which reading counts for which meter and period.

Contract. Every function takes a SQLAlchemy `Connection` or `Session` (`Db`), runs Core
statements inside the caller's transaction and never commits, so ORM code and Core code
share it. ORM `Reading` objects loaded before a ledger write may be stale afterwards.

- `period_of(moment, zone, window)`: the period ('YYYY-MM') a reading handed in at `moment`
  counts for: the month of the utility's local date, the next month after the window's last
  day. A call decides it once, when the window check admits it, and keeps it on its state.
- `lock_meters(db, ids)`: the meters' ledger lock, taken in id order. A transaction that
  stores, accepts or replaces a reading takes it FIRST, before writing any other row that
  references the meter (timeline notes, flags, audit). `store`, `accept` and `correct` take
  it too (again is harmless), so a caller that writes nothing else may leave it to them.
  PostgreSQL: SELECT … FOR NO KEY UPDATE; SQLite: the database's write lock.
- `current_readings(db, ids, period)`: per meter, its current accepted reading of the
  period. At most one exists: the partial unique index `uq_readings_current_accepted`.
- `rules_history(db, ids, before_period)`: what the intake rules see as history: the current
  accepted readings of earlier periods, oldest first.
- `store(db, NewReading)`: store a confirmed reading; None when its idempotency key was
  used already (a replay). The replace rule, for accepted readings: the reading taken last
  is current. A new accepted reading taken no earlier than the current one replaces it, and
  every pending flagged reading of the period taken before it is marked superseded by it
  (`replaced_by_id`): the flag stays open and decidable, and shows what superseded it. A
  reading taken before the current one is kept as history, replaced by the current one. A
  flagged reading never replaces anything and is never replaced by a flagged one.
  `plan_store(new, open_rows(...))` decides it (the one place the rule lives);
  `plan_statements` is the same store as prebuilt text for the webhooks' hot path.
- `accept(db, reading_id)`: a flagged reading becomes accepted under the same rule.
  `reject(db, reading_id)`: it is rejected; nothing current changes.
- `correct(db, replaced_id, NewReading)`: an operator's value in place of a reading.
- `storage.ledger_retry.retrying(work)`: run a unit of work again, a few times, when the
  database reports a deadlock, a serialization failure or (SQLite) a busy database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Table,
    and_,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.clock import utcnow
from storage.models import Meter, Reading

Db = Connection | Session
READINGS = cast(Table, Reading.__table__)
METERS = cast(Table, Meter.__table__)
R = READINGS.c


def counts_for_billing(readings: FromClause) -> ColumnElement[bool]:
    """A reading counts (is current) while it is accepted and nothing replaced it; the same
    condition as the partial unique index (storage.models.CURRENT_ACCEPTED)."""
    return and_(readings.c.status == "accepted", readings.c.replaced_by_id.is_(None))


IS_CURRENT = counts_for_billing(READINGS)
# A flagged reading waiting for an operator that no later reading has superseded.
IS_PENDING = and_(R.status == "flagged", R.replaced_by_id.is_(None))
HISTORY_LIMIT = 24


class LedgerError(ValueError):
    """A ledger operation that cannot be done (the reading is not in the right status)."""


class LedgerReading(NamedTuple):
    """A reading as the ledger sees it."""

    id: int
    meter_id: int
    value: Decimal
    taken_at: datetime
    period: str
    status: str
    source: str
    replaced_by_id: int | None


_COLUMNS = (R.id, R.meter_id, R.value, R.taken_at, R.period, R.status, R.source, R.replaced_by_id)


@dataclass(frozen=True)
class NewReading:
    """A reading to store; `idempotency_key` makes a replay store nothing."""

    meter_id: int
    value: Decimal
    taken_at: datetime
    period: str
    source: str  # ivr | operator | import
    status: str = "accepted"  # accepted | flagged
    call_id: int | None = None
    idempotency_key: str | None = None
    input_mode: str | None = None
    transcript: str | None = None
    confidence: float | None = None
    audio_file: str | None = None
    created_at: datetime | None = None  # when stored; now by default


@dataclass(frozen=True)
class Stored:
    """What a store or an accept did: the reading, and what it made history."""

    reading_id: int
    current: bool  # whether it is now the meter's current reading of the period
    replaced: LedgerReading | None = None  # the accepted reading it replaced
    later: LedgerReading | None = None  # the later current reading that keeps counting
    superseded: tuple[int, ...] = ()  # pending flagged readings it superseded
    # The period's current accepted reading before the store (what a flagged one would
    # replace if accepted); `store` only.
    was_current: LedgerReading | None = None


@dataclass(frozen=True)
class StorePlan:
    """What storing a reading does, decided from its period's open rows under the meter's
    lock (`plan_store`): the SQL that carries it out is the Core version (`store`) or the
    webhooks' prebuilt one (`plan_statements`); the rule is decided here only."""

    replaced_by_id: int | None  # the new row's replaced_by_id as inserted
    becomes_current: bool
    swap_out: LedgerReading | None  # the current reading it takes the place of
    superseded: tuple[int, ...]  # pending flagged readings it supersedes
    later: LedgerReading | None  # a current reading taken after it, which keeps counting
    was_current: LedgerReading | None

    def stored(self, reading_id: int) -> Stored:
        """What the store did, once the new row's id is known."""
        return Stored(reading_id, current=self.becomes_current, replaced=self.swap_out,
                      later=self.later, superseded=self.superseded,
                      was_current=self.was_current)  # fmt: skip


def period_of(moment: datetime, zone: tzinfo, window: tuple[int, int]) -> str:
    """'YYYY-MM' a reading handed in at `moment` counts for (after the window: next month).

    >>> from zoneinfo import ZoneInfo
    >>> from datetime import UTC
    >>> msk = ZoneInfo("Europe/Moscow")
    >>> period_of(datetime(2026, 11, 25, 20, 59, tzinfo=UTC), msk, (23, 25))
    '2026-11'
    >>> period_of(datetime(2026, 12, 25, 21, 0, tzinfo=UTC), msk, (23, 25))
    '2027-01'
    """
    today = moment.astimezone(zone).date()
    if today.day <= window[1]:
        return f"{today.year:04d}-{today.month:02d}"
    if today.month == 12:
        return f"{today.year + 1:04d}-01"
    return f"{today.year:04d}-{today.month + 1:02d}"


def _dialect(db: Db) -> str:
    return db.dialect.name if isinstance(db, Connection) else db.get_bind().dialect.name


def lock_meters(db: Db, meter_ids: Iterable[int]) -> None:
    """Take the meters' ledger lock, in id order, before writing anything that names them.

    PostgreSQL: FOR NO KEY UPDATE serialises the meter's ledger writers, yet lets rows that
    merely reference the meter (a timeline note's foreign key takes KEY SHARE) through, so a
    note written before the lock cannot deadlock against it.
    SQLite has one writer at a time, but the driver runs reads outside any transaction until
    the first write: a no-op UPDATE takes the write lock now, so the current reading read
    next is the one the write will see (two operators' forms would otherwise both store a
    "current" reading, and the second hit the unique index).
    """
    ids = sorted(set(meter_ids))
    if not ids:
        return
    if _dialect(db) == "postgresql":
        stmt = select(METERS.c.id).where(METERS.c.id.in_(ids)).order_by(METERS.c.id)
        db.execute(stmt.with_for_update(key_share=True))
    else:
        db.execute(update(METERS).where(METERS.c.id.in_(ids)).values(active=METERS.c.active))


def current_readings(db: Db, meter_ids: Iterable[int], period: str) -> dict[int, LedgerReading]:
    """Per meter, the current accepted reading of `period`, if any."""
    ids = list(meter_ids)
    if not ids:
        return {}
    stmt = select(*_COLUMNS).where(R.meter_id.in_(ids), R.period == period, IS_CURRENT)
    return {row.meter_id: LedgerReading(*row) for row in db.execute(stmt)}


def rules_history(
    db: Db,
    meter_ids: Iterable[int],
    before_period: str,
    exclude_id: int | None = None,
    limit: int = HISTORY_LIMIT,
) -> dict[int, list[LedgerReading]]:
    """Per meter, the current accepted readings of periods before `before_period`, oldest
    first, at most `limit` (what the intake rules compare a new value with)."""
    ids = list(meter_ids)
    history: dict[int, list[LedgerReading]] = {mid: [] for mid in ids}
    if not ids:
        return history
    stmt = select(*_COLUMNS).where(R.meter_id.in_(ids), R.period < before_period, IS_CURRENT)
    if exclude_id is not None:
        stmt = stmt.where(R.id != exclude_id)
    stmt = stmt.order_by(R.meter_id, R.taken_at.desc(), R.id.desc())
    for row in db.execute(stmt):
        if len(history[row.meter_id]) < limit:
            history[row.meter_id].append(LedgerReading(*row))
    return {mid: items[::-1] for mid, items in history.items()}


def reading(db: Db, reading_id: int) -> LedgerReading | None:
    """One reading by id."""
    row = db.execute(select(*_COLUMNS).where(R.id == reading_id)).one_or_none()
    return None if row is None else LedgerReading(*row)


def reading_by_key(db: Db, idempotency_key: str) -> LedgerReading | None:
    """The reading stored under this idempotency key, if any."""
    row = db.execute(select(*_COLUMNS).where(R.idempotency_key == idempotency_key)).one_or_none()
    return None if row is None else LedgerReading(*row)


def stored_by_call(db: Db, call_id: int) -> int:
    """How many readings a call stored itself (operators' corrections not counted)."""
    stmt = select(func.count()).where(R.call_id == call_id, R.source == "ivr")
    return int(db.execute(stmt).scalar_one())


def _insert(db: Db, new: NewReading, replaced_by_id: int | None) -> int | None:
    values: dict[str, Any] = {**asdict(new), "replaced_by_id": replaced_by_id}
    values["created_at"] = new.created_at or utcnow()
    if new.idempotency_key is None:
        return db.execute(insert(READINGS).values(**values).returning(R.id)).scalar_one()
    # ON CONFLICT DO NOTHING on the key (not check-then-insert): a replayed webhook, or two
    # racing workers, store the reading once.
    insert_fn = pg_insert if _dialect(db) == "postgresql" else sqlite_insert
    stmt = insert_fn(READINGS).values(**values)
    stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
    return db.execute(stmt.returning(R.id)).scalar_one_or_none()


def _set(db: Db, reading_id: int, **values: Any) -> None:
    db.execute(update(READINGS).where(R.id == reading_id).values(**values))


def _supersede_pending(
    db: Db, current: int, meter_id: int, period: str, taken_at: datetime
) -> tuple[int, ...]:
    """Mark the period's pending flagged readings taken before `taken_at` superseded."""
    stmt = (
        update(READINGS)
        .where(R.meter_id == meter_id, R.period == period, IS_PENDING, R.taken_at <= taken_at)
        .where(R.id != current)
        .values(replaced_by_id=current)
        .returning(R.id)
    )
    return tuple(sorted(db.execute(stmt).scalars()))


def make_current(db: Db, reading_id: int, old: LedgerReading | None, **values: Any) -> None:
    """`reading_id` takes `old`'s place as current: `old` steps aside first, so that at no
    statement does the period hold two current readings (the unique index checks each
    statement). The caller holds the meter's lock and has applied the replace rule."""
    if old is not None:
        _set(db, old.id, replaced_by_id=reading_id)
    _set(db, reading_id, replaced_by_id=None, **values)


def supersede_pending_of(db: Db, currents: list[tuple[int, int, str, datetime]]) -> None:
    """For readings just made current, given as (id, meter_id, period, taken_at): mark the
    pending flagged readings of their periods taken no later superseded (bulk imports)."""
    if not currents:
        return
    winner = {(meter_id, period): (rid, taken) for rid, meter_id, period, taken in currents}
    stmt = select(R.id, R.meter_id, R.period, R.taken_at).where(
        R.meter_id.in_({meter_id for _, meter_id, _, _ in currents}), IS_PENDING
    )
    for row in db.execute(stmt).all():
        found = winner.get((row.meter_id, row.period))
        if found is not None and row.taken_at <= found[1]:
            _set(db, row.id, replaced_by_id=found[0])


def open_rows(db: Db, meter_id: int, period: str) -> list[LedgerReading]:
    """The period's rows a store looks at: its current accepted reading and its pending
    flagged ones (replaced by nothing). Read under the meter's lock."""
    stmt = select(*_COLUMNS).where(
        R.meter_id == meter_id, R.period == period, R.replaced_by_id.is_(None),
        R.status.in_(("accepted", "flagged")),
    ).order_by(R.id)  # fmt: skip
    return [LedgerReading(*row) for row in db.execute(stmt)]


def plan_store(new: NewReading, rows: list[LedgerReading]) -> StorePlan:
    """The replace rule (see the module's contract), applied to the period's `open_rows`."""
    current = next((r for r in rows if r.status == "accepted"), None)
    later = current if current is not None and current.taken_at > new.taken_at else None
    if new.status != "accepted" or later is not None:
        # Nothing current changes: a flagged reading, or one taken before the current
        # reading (kept as history, replaced by the later one).
        replaced_by = later.id if later is not None else None
        return StorePlan(replaced_by, False, None, (), later, current)
    superseded = tuple(sorted(r.id for r in rows
                              if r.status == "flagged" and r.taken_at <= new.taken_at))  # fmt: skip
    # Over a current reading: inserted as replaced by it, then swapped in (`make_current`).
    return StorePlan(current.id if current else None, True, current, superseded, None, current)


def store(db: Db, new: NewReading) -> Stored | None:
    """Store a confirmed reading by the replace rule; None if its key was stored before."""
    lock_meters(db, [new.meter_id])
    plan = plan_store(new, open_rows(db, new.meter_id, new.period))
    reading_id = _insert(db, new, plan.replaced_by_id)
    if reading_id is None:
        return None
    if plan.swap_out is not None:
        make_current(db, reading_id, plan.swap_out)
    if plan.superseded:
        db.execute(update(READINGS).where(R.id.in_(plan.superseded))
                   .values(replaced_by_id=reading_id))  # fmt: skip
    return plan.stored(reading_id)


# --- the same store as prebuilt SQL, for the webhooks' hot path (storage/steps.py) ---
# Text on the driver's cursor rather than Core: building the statements above costs a
# webhook more CPU than the rest of its step. The rule is `plan_store`'s either way.

READING_COLUMNS = ("id", "meter_id", "value", "taken_at", "period", "status", "source",
                   "replaced_by_id")  # fmt: skip
INSERT_COLUMNS = ("id", "meter_id", "value", "taken_at", "period", "source", "status",
                  "call_id", "idempotency_key", "replaced_by_id", "input_mode", "transcript",
                  "confidence", "audio_file", "created_at")  # fmt: skip


def open_rows_sql(mark: str) -> str:
    """`open_rows` as text (parameters: meter id, period)."""
    return (f"SELECT {', '.join(READING_COLUMNS)} FROM readings WHERE meter_id = {mark} AND "
            f"period = {mark} AND replaced_by_id IS NULL AND status IN ('accepted', 'flagged') "
            "ORDER BY id")  # fmt: skip


def plan_statements(
    new: NewReading, reading_id: int, plan: StorePlan, mark: str, convert: Any
) -> list[tuple[str, list[Any]]]:
    """The statements that carry out `plan` for `new` as row `reading_id` (an id taken
    under the lock, so the row's id is known before it is inserted). A plain INSERT: a
    used idempotency key fails the transaction, and the caller stores the step again the
    Core way (`store`), which answers None. `convert` turns a value into the driver's."""
    m = mark
    values = [reading_id, new.meter_id, new.value, new.taken_at, new.period, new.source,
              new.status, new.call_id, new.idempotency_key, plan.replaced_by_id,
              new.input_mode, new.transcript, new.confidence, new.audio_file,
              new.created_at or utcnow()]  # fmt: skip
    marks = ", ".join([m] * len(INSERT_COLUMNS))
    out: list[tuple[str, list[Any]]] = [
        (f"INSERT INTO readings ({', '.join(INSERT_COLUMNS)}) VALUES ({marks})",
         [convert(v) for v in values])
    ]  # fmt: skip
    if plan.swap_out is not None:  # make_current: the old one steps aside first
        out.append((f"UPDATE readings SET replaced_by_id = {m} WHERE id = {m}",
                    [reading_id, plan.swap_out.id]))  # fmt: skip
        out.append((f"UPDATE readings SET replaced_by_id = NULL WHERE id = {m}", [reading_id]))
    if plan.superseded:
        ids = ", ".join([m] * len(plan.superseded))
        out.append((f"UPDATE readings SET replaced_by_id = {m} WHERE id IN ({ids})",
                    [reading_id, *plan.superseded]))  # fmt: skip
    return out


def accept(db: Db, reading_id: int) -> Stored:
    """A flagged reading accepted by an operator: current unless a later one is."""
    found = reading(db, reading_id)
    if found is None:
        raise LedgerError(f"no reading {reading_id}")
    lock_meters(db, [found.meter_id])
    found = reading(db, reading_id)  # read again under the lock
    if found is None or found.status != "flagged":
        raise LedgerError(f"reading {reading_id} is not waiting for a decision")
    current = current_readings(db, [found.meter_id], found.period).get(found.meter_id)
    if current is not None and current.taken_at > found.taken_at:
        _set(db, reading_id, status="accepted", replaced_by_id=current.id)
        return Stored(reading_id, current=False, later=current)
    make_current(db, reading_id, current, status="accepted")
    superseded = _supersede_pending(db, reading_id, found.meter_id, found.period, found.taken_at)
    return Stored(reading_id, current=True, replaced=current, superseded=superseded)


def reject(db: Db, reading_id: int) -> None:
    """A flagged reading rejected by an operator; nothing current changes."""
    found = reading(db, reading_id)
    if found is None or found.status != "flagged":
        raise LedgerError(f"reading {reading_id} is not waiting for a decision")
    _set(db, reading_id, status="rejected")


def correct(db: Db, replaced_id: int | None, new: NewReading) -> Stored | None:
    """An operator's value in place of reading `replaced_id` (flagged or accepted), by the
    replace rule; the corrected reading points at its correction. None: `new`'s key was
    stored before (the same form submitted twice)."""
    lock_meters(db, [new.meter_id])
    if replaced_id is not None:
        old = reading(db, replaced_id)
        if old is None or old.status == "rejected":
            raise LedgerError(f"reading {replaced_id} cannot be corrected")
    stored = store(db, new)
    if stored is None:
        return None
    if replaced_id is not None and (stored.replaced is None or stored.replaced.id != replaced_id):
        # A flagged reading, or accepted history: it now points at its correction.
        _set(db, replaced_id, replaced_by_id=stored.reading_id)
    return stored

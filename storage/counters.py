"""Counted limits that hold under concurrency: one row per key, changed by conditional UPDATEs.

`take` is the hourly call limit's primitive: the row is created if missing (INSERT … ON
CONFLICT DO NOTHING), then a single UPDATE counts the hit only while the window has room.
Two requests cannot both take the last place: PostgreSQL re-checks the WHERE clause on the
locked row, SQLite runs writers one at a time. A count read first and a row inserted after
(what this replaced) let 21–36 of 40–80 simultaneous calls through a limit of 10.

Windows are fixed: a window opens at its first hit and lasts `window`; so at most
2 × `limit` hits fall in any sliding window of that length.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import Counter, UTCDateTime

# A session, or the webhooks' hot-path connection (autocommit: each UPDATE commits alone,
# and a single conditional UPDATE is what makes the count atomic).
Db = Session | Connection


def _ensure(session: Db, key: str, now: datetime) -> None:
    bind = session if isinstance(session, Connection) else session.get_bind()
    dialect = bind.dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert_fn(Counter)
        .values(key=key, count=0, window_start=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )


def _bump(key: str, now: datetime, window: timedelta, limit: int | None) -> int | None:
    """The statement counting one hit; None as `limit` counts without a ceiling."""
    expired = Counter.window_start <= literal(now - window, UTCDateTime())
    stmt = update(Counter).where(Counter.key == key)
    if limit is not None:
        stmt = stmt.where(or_(expired, Counter.count < limit))
    return stmt.values(  # type: ignore[return-value]
        count=case((expired, 1), else_=Counter.count + 1),
        window_start=case((expired, literal(now, UTCDateTime())), else_=Counter.window_start),
    ).returning(Counter.count)


def take(session: Db, key: str, now: datetime, window: timedelta, limit: int) -> bool:
    """Count one hit on `key` if its window holds fewer than `limit`; whether it was counted."""
    _ensure(session, key, now)
    return session.execute(_bump(key, now, window, limit)).scalar_one_or_none() is not None  # type: ignore[call-overload]


def give_back(session: Db, key: str) -> None:
    """Uncount one hit of the current window (never below zero)."""
    session.execute(
        update(Counter).where(Counter.key == key, Counter.count > 0).values(count=Counter.count - 1)
    )


def used(session: Session, key: str, now: datetime, window: timedelta) -> int:
    """Hits counted on `key` in its current window (0 when it has expired)."""
    row = session.get(Counter, key)
    if row is None or row.window_start <= now - window:
        return 0
    return row.count


def add_failure(
    session: Session,
    key: str,
    now: datetime,
    window: timedelta,
    free: int,
    block: timedelta,
    longest: timedelta,
) -> datetime | None:
    """Count a failure; from the `free`-th on, block the key, twice as long each time.

    Returns the end of the block, if there is one. Failures older than `window` are forgotten.
    """
    _ensure(session, key, now)
    count = session.execute(_bump(key, now, window, None)).scalar_one()  # type: ignore[call-overload]
    if count < free:
        return None
    until = now + min(block * 2 ** (count - free), longest)
    session.execute(update(Counter).where(Counter.key == key).values(blocked_until=until))
    return until


def blocked_until(session: Session, keys: list[str], now: datetime) -> datetime | None:
    """The latest block still running on any of `keys`, if any."""
    ends = session.scalars(
        select(Counter.blocked_until).where(
            Counter.key.in_(keys), Counter.blocked_until > literal(now, UTCDateTime())
        )
    ).all()
    return max((e for e in ends if e is not None), default=None)


def clear(session: Session, keys: list[str] | None = None, prefix: str | None = None) -> int:
    """Forget the counts of `keys`, or of every key starting with `prefix`; how many."""
    stmt = delete(Counter)
    if keys is not None:
        stmt = stmt.where(Counter.key.in_(keys))
    if prefix is not None:
        stmt = stmt.where(Counter.key.startswith(prefix, autoescape=True))
    return session.execute(stmt).rowcount  # type: ignore[attr-defined]


def blocked(session: Session, prefix: str, now: datetime) -> dict[str, datetime]:
    """Keys starting with `prefix` that are blocked now, with the end of each block."""
    rows = session.execute(
        select(Counter.key, Counter.blocked_until).where(
            Counter.key.startswith(prefix, autoescape=True),
            Counter.blocked_until > literal(now, UTCDateTime()),
        )
    )
    return {key: until for key, until in rows if until is not None}

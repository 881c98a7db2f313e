"""Counted limits that hold under concurrency: one row per key, changed by conditional writes.

`take` is the hourly call limit's primitive: one statement (INSERT … ON CONFLICT DO UPDATE
… WHERE … RETURNING) creates the row or counts the hit only while the window has room.
Two requests cannot both take the last place: PostgreSQL evaluates the WHERE clause on the
locked row, SQLite runs writers one at a time. A count read first and a row inserted after
(what this replaced) let 21–36 of 40–80 simultaneous calls through a limit of 10.

Windows are fixed: a window opens at its first hit and lasts `window`; so at most
2 × `limit` hits fall in any sliding window of that length.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, delete, literal, select, update
from sqlalchemy.orm import Session

from storage.models import Counter, UTCDateTime
from storage.steps import sqlite_timestamp

# A session, or the webhooks' hot-path connection (autocommit: each statement commits alone,
# and a single conditional statement is what makes the count atomic).
Db = Session | Connection


def take_statement(pg: bool, key: str, now: datetime, window: timedelta,
                   limit: int | None) -> tuple[str, list[Any]]:  # fmt: skip
    """One hit on `key` as one statement on the driver's cursor (its text prebuilt, its
    parameters in the driver's form): the row is created at count 1, or counted if its window
    expired (a new window opens now) or holds fewer than `limit` (None: no ceiling; else at
    least 1, as the settings require). RETURNING gives the new count, no row when the window
    was full.

    Atomic: PostgreSQL's ON CONFLICT DO UPDATE locks the existing row and evaluates the WHERE
    on its latest version; SQLite runs one writer at a time. The hot path sends it in a
    pipeline with its other reads (a hand-written text: SQLAlchemy's Core would build and
    compile the statement, and its cache key, on every request).
    """
    params: list[Any]
    if pg:
        cutoff: Any = now - window
        params = [key, now, cutoff, cutoff]
    else:  # UTCDateTime's text on SQLite: compared as text, in the same fixed format
        cutoff = sqlite_timestamp(now - window)
        params = [key, sqlite_timestamp(now), cutoff, cutoff]
    if limit is not None:
        params += [cutoff, limit]
    return _take_sql(pg, limit is not None), params


@cache
def _take_sql(pg: bool, limited: bool) -> str:
    m = "%s" if pg else "?"
    expired = f"counters.window_start <= {m}"
    sql = (
        f'INSERT INTO counters ("key", count, window_start) VALUES ({m}, 1, {m}) '
        f'ON CONFLICT ("key") DO UPDATE SET '
        f"count = CASE WHEN {expired} THEN 1 ELSE counters.count + 1 END, "
        f"window_start = CASE WHEN {expired} THEN excluded.window_start "
        f"ELSE counters.window_start END"
    )
    if limited:
        sql += f" WHERE {expired} OR counters.count < {m}"
    return sql + " RETURNING count"


def give_back_statement(pg: bool, key: str) -> tuple[str, list[Any]]:
    """`give_back` as a statement on the driver's cursor (returning the new count, if any)."""
    m = "%s" if pg else "?"
    sql = f'UPDATE counters SET count = count - 1 WHERE "key" = {m} AND count > 0 RETURNING count'
    return sql, [key]


def _hit(session: Db, key: str, now: datetime, window: timedelta, limit: int | None) -> int | None:
    """Count one hit (`take_statement`); the new count, None if the window was full."""
    conn = session if isinstance(session, Connection) else session.connection()
    sql, params = take_statement(conn.dialect.name == "postgresql", key, now, window, limit)
    row = conn.exec_driver_sql(sql, tuple(params)).fetchone()
    return None if row is None else int(row[0])


def take(session: Db, key: str, now: datetime, window: timedelta, limit: int) -> bool:
    """Count one hit on `key` if its window holds fewer than `limit`; whether it was counted."""
    return _hit(session, key, now, window, limit) is not None


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
    count = _hit(session, key, now, window, None)
    assert count is not None  # no ceiling: always counted
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

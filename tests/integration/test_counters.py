"""storage.counters on SQLite and PostgreSQL: the one-statement take counts in fixed windows,
on a Session (the ORM's paths) and on the webhooks' autocommit connection alike, and stores
its window's start as the models read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage import counters
from storage.models import Counter

T0 = datetime(2026, 11, 24, 7, 0, 0, 123456, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _row(clean_db: Engine, key: str) -> Counter | None:
    with Session(clean_db) as session:
        return session.get(Counter, key)


def test_take_counts_up_to_the_limit_in_a_fixed_window(clean_db: Engine) -> None:
    with Session(clean_db) as session:
        taken = [counters.take(session, "k", T0 + timedelta(minutes=n), HOUR, 3) for n in range(5)]
        session.commit()
        assert taken == [True, True, True, False, False]
        assert counters.used(session, "k", T0 + timedelta(minutes=5), HOUR) == 3
    row = _row(clean_db, "k")
    assert row is not None and (row.count, row.window_start, row.blocked_until) == (3, T0, None)


def test_a_new_window_opens_at_the_first_hit_after_the_last_one_expired(
    clean_db: Engine,
) -> None:
    with Session(clean_db) as session:
        assert counters.take(session, "k", T0, HOUR, 2)
        assert counters.take(session, "k", T0 + timedelta(minutes=30), HOUR, 2)
        # Still inside the window that opened at T0 (fixed, not sliding).
        assert not counters.take(session, "k", T0 + HOUR - timedelta(microseconds=1), HOUR, 2)
        later = T0 + HOUR  # the window has expired exactly now
        assert counters.take(session, "k", later, HOUR, 2)
        session.commit()
    row = _row(clean_db, "k")
    assert row is not None and (row.count, row.window_start) == (1, T0 + HOUR)


def test_the_hot_path_connection_counts_the_same_and_gives_back(
    webhooks: Engine, clean_db: Engine
) -> None:
    local = T0.astimezone(datetime.now().astimezone().tzinfo)  # any zone: stored as UTC
    with webhooks.connect() as conn:  # autocommit: each statement commits alone
        assert [counters.take(conn, "k", local, HOUR, 2) for _ in range(3)] == [True, True, False]
        counters.give_back(conn, "k")
        assert counters.take(conn, "k", local, HOUR, 2)
        for _ in range(4):
            counters.give_back(conn, "k")
    row = _row(clean_db, "k")
    assert row is not None and (row.count, row.window_start) == (0, T0)  # never below zero


def test_the_raw_statement_and_the_orm_agree_on_the_window(
    webhooks: Engine, clean_db: Engine
) -> None:
    """A window opened by the hot path's text statement is read back by the ORM (and by the
    statement itself) as the same moment: SQLite compares the stored text, so its format
    must be UTCDateTime's."""
    with webhooks.connect() as conn:
        pg = conn.dialect.name == "postgresql"
        sql, params = counters.take_statement(pg, "k", T0, HOUR, 5)
        assert conn.exec_driver_sql(sql, tuple(params)).scalar_one() == 1
    with Session(clean_db) as session:
        assert counters.used(session, "k", T0 + HOUR - timedelta(microseconds=1), HOUR) == 1
        assert counters.used(session, "k", T0 + HOUR, HOUR) == 0
    with webhooks.connect() as conn:
        just_before = T0 + HOUR - timedelta(microseconds=1)
        sql, params = counters.take_statement(pg, "k", just_before, HOUR, 5)
        assert conn.exec_driver_sql(sql, tuple(params)).scalar_one() == 2  # same window
        sql, params = counters.take_statement(pg, "k", T0 + HOUR, HOUR, 5)
        assert conn.exec_driver_sql(sql, tuple(params)).scalar_one() == 1  # a new one


def test_failures_block_from_the_free_th_on_twice_as_long_each_time(clean_db: Engine) -> None:
    block, longest = timedelta(minutes=1), timedelta(minutes=3)
    with Session(clean_db) as session:
        ends = [counters.add_failure(session, "f", T0, HOUR, 2, block, longest) for _ in range(5)]
        session.commit()
        assert ends == [None, T0 + block, T0 + 2 * block, T0 + longest, T0 + longest]
        assert counters.blocked_until(session, ["f", "other"], T0) == T0 + longest
        # An hour later the failures are forgotten: a new window, under the free count.
        assert counters.add_failure(session, "f", T0 + HOUR, HOUR, 2, block, longest) is None

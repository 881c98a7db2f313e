"""Engines and sessions: SQLite (embedded default, WAL mode) or PostgreSQL (production)."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any, cast

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout, enforced foreign keys and
    `sqlite_synchronous` (FULL unless given: every commit synced, see WEBHOOK_SYNCHRONOUS)."""
    synchronous = kwargs.pop("sqlite_synchronous", "FULL")
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship; a plain postgresql:// URL means it.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, synchronous))
        return engine
    if "connect_timeout" not in url:
        # Twilio gives up on a webhook after 15 s; without this a database that accepts no
        # connections holds a request for minutes instead of failing to an apology.
        kwargs.setdefault("connect_args", {"connect_timeout": 5})
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


# Each SQLite connection has its own page cache, and drops all of it when another connection
# has written since its last transaction. A worker's webhooks take turns (ivr/voice/gate.py),
# so one connection at a time is busy; a first-in-first-out pool then gives each webhook the
# connection idle longest, whose cache the others' writes have certainly emptied, and it reads
# every page back. Last-in-first-out keeps giving the one just returned, whose cache only other
# processes' writes empty. Counted in process (`strace -f -c -e trace=pread64 python
# bench/threads_cpu.py`): 109,644 page reads against 171,841, about 13 fewer a webhook with 8
# threads. In `meterline serve`'s four workers at saturation only about 1.5 of 27-29 fewer,
# since there the other workers' writes empty it (docs/benchmarks.md, round ten). On
# PostgreSQL the cache is the server's: no change.
def make_webhook_engine(url: str) -> Engine:
    """The webhooks' engine: autocommit (the hot path opens its own transactions, see
    storage/steps.py) and no pre-ping on checkout (a dead connection is retried instead); on
    SQLite, commits that wait for the disk only where a step asks (`WEBHOOK_SYNCHRONOUS`);
    statement parameters (callers' numbers) kept out of error messages. On PostgreSQL every
    statement is prepared on first use: the hot path runs the same few again and again.
    On SQLite the pool hands out the connection returned last (`pool_use_lifo`, above),
    where SQLAlchemy pools at all (not for `sqlite://`: one connection a thread)."""
    lifo = {"pool_use_lifo": True} if _sqlite_pooled(url) else {}
    engine = make_engine(
        url, isolation_level="AUTOCOMMIT", pool_pre_ping=False, hide_parameters=True,
        sqlite_synchronous=WEBHOOK_SYNCHRONOUS, **lifo,
    )  # fmt: skip
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _prepare_everything)
    return engine


def _sqlite_pooled(url: str) -> bool:
    """Whether SQLAlchemy gives this SQLite URL a queue of connections (a file: yes)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    dialect = cast(type[DefaultDialect], parsed.get_dialect())
    return issubclass(dialect.get_pool_class(parsed), QueuePool)


def _prepare_everything(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.prepare_threshold = 0


# SQLite in WAL mode with synchronous=FULL syncs the WAL at every commit: a committed
# transaction survives a power cut. With NORMAL it survives a crash of the process but not
# of the machine (the WAL is synced at checkpoints only). Every engine commits with FULL
# (operators' entries, imports, the CLI) except the webhooks', which commit with NORMAL; a
# step that stores a reading or raises a flag syncs the WAL itself just after its commit,
# before its reply (storage.steps, `sync_wal`), without holding the write lock for it.
WEBHOOK_SYNCHRONOUS = "NORMAL"


def _sqlite_pragmas(synchronous: str, dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _none(value: None) -> None:
    return value


# sqlite3 binds None as NULL, but only after asking for an adapter: it finds none registered
# for NoneType, then asks its protocol class for `__adapt__`, which fails as an AttributeError
# built and thrown away, for every NULL parameter of every statement (a step binds about
# nine). Registered, the adapter is a dictionary hit and a call that returns None unchanged.
sqlite3.register_adapter(type(None), _none)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """One session per request or unit of work; nothing expires on commit."""
    return sessionmaker(engine, expire_on_commit=False)

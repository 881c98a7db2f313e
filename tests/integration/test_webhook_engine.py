"""The webhooks' engine hands out the SQLite connection returned last (storage/db.py): its
page cache is the one still warm; in-memory databases keep their one connection a thread."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from storage.db import make_webhook_engine


def test_sqlite_file_reuses_the_connection_returned_last(tmp_path: Path) -> None:
    engine = make_webhook_engine(f"sqlite:///{tmp_path / 'line.db'}")
    try:
        first, second = engine.raw_connection(), engine.raw_connection()
        first_driver, second_driver = first.driver_connection, second.driver_connection
        first.close()
        second.close()  # returned last
        again = engine.raw_connection()
        assert again.driver_connection is second_driver
        assert again.driver_connection is not first_driver
        again.close()
    finally:
        engine.dispose()


def test_in_memory_sqlite_still_serves() -> None:
    engine = make_webhook_engine("sqlite://")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()

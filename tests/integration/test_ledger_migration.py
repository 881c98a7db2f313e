"""Migration 0002 on a database that already broke the invariant: repaired, audited, enforced."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import Account, AuditEntry, Meter, Reading
from tests.conftest import own_schema

MARCH = datetime(2026, 3, 23, 7, 0, tzinfo=UTC)


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """A database with no schema yet: a SQLite file, or a fresh PostgreSQL schema."""
    base = os.environ.get("METERLINE_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with own_schema(base, "test_mig") as url:
        yield url


def _reading(engine: Engine, meter_id: int, value: str, hour: int, **extra: object) -> int:
    row = {
        "meter_id": meter_id,
        "value": value,
        "taken_at": MARCH.replace(hour=hour),
        "period": "2026-03",
        "source": "ivr",
        "status": "accepted",
        "created_at": MARCH,
        **extra,
    }
    with engine.begin() as conn:
        return int(conn.execute(insert(Reading).values(**row).returning(Reading.id)).scalar_one())


def test_migration_0002_keeps_the_latest_current_reading_and_audits_the_others(
    empty_url: str,
) -> None:
    upgrade(empty_url, "0001")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            account = conn.execute(
                insert(Account).values(number="1", address="", supplier="", created_at=MARCH)
            ).inserted_primary_key[0]
            meter = conn.execute(
                insert(Meter).values(
                    account_id=account, serial="M1", kind="hot_water", unit="м3",
                    integer_digits=5, decimal_digits=3, supplier="", location="", active=True,
                )
            ).inserted_primary_key[0]  # fmt: skip
        older = _reading(engine, meter, "100", 8)
        middle = _reading(engine, meter, "101", 9)
        latest = _reading(engine, meter, "102", 10)
        flagged = _reading(engine, meter, "900", 11, status="flagged")
        other_month = _reading(engine, meter, "99", 8, period="2026-02")

        upgrade(empty_url)

        with engine.connect() as conn:
            rows = dict(conn.execute(select(Reading.id, Reading.replaced_by_id)).all())
            audit = conn.execute(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert rows == {
            older: latest, middle: latest, latest: None, flagged: None, other_month: None
        }  # fmt: skip
        assert [(a.action, a.reading_id) for a in audit] == [
            ("ledger_repair", middle),
            ("ledger_repair", older),
        ]
        assert json.loads(audit[0].after) == {"replaced_by_id": latest, "value": "102"}
        with pytest.raises(IntegrityError, match="uq_readings_current_accepted|UNIQUE"):
            _reading(engine, meter, "103", 12)
        _reading(engine, meter, "104", 13, status="flagged")  # pending ones are not limited
    finally:
        engine.dispose()

"""Queries behind the operator view, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from storage import ledger
from storage.ledger import LedgerError
from storage.models import Call, Flag, Operator
from storage.review import (
    PAGE_SIZE,
    QueueFilter,
    resolve_flag,
    review_queue,
)
from storage.review_stats import figures
from tests.browser.seed import CALLER, seed

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def test_the_queue_pages_newest_first_and_counts_every_reason(session: Session) -> None:
    seeded = seed(session, NOW, commit=False)
    for i in range(PAGE_SIZE + 5):
        session.add(
            Flag(
                reason="dropped_call" if i % 2 else "no_input",
                account_id=seeded.account_id,
                created_at=NOW - timedelta(hours=i + 1),
            )
        )
    session.flush()
    first = review_queue(session, QueueFilter())
    assert first.total == PAGE_SIZE + 6 and first.pages == 2 and len(first.rows) == PAGE_SIZE
    assert first.rows[0].flag_id == seeded.flag_id
    assert [r.created_at for r in first.rows] == sorted(
        (r.created_at for r in first.rows), reverse=True
    )
    assert first.counts == {"anomalous": 1, "dropped_call": 27, "no_input": 28}
    second = review_queue(session, QueueFilter(page=2))
    assert len(second.rows) == 6
    only = review_queue(session, QueueFilter(reason="dropped_call"))
    assert only.total == 27 and only.counts["no_input"] == 28


def test_the_queue_row_carries_value_previous_and_caller(session: Session) -> None:
    seed(session, NOW, commit=False)
    row = review_queue(session, QueueFilter(phone=CALLER)).rows[0]
    assert row.value == Decimal(190) and row.previous == Decimal(133)
    assert row.caller == CALLER and row.account_number == "100200300"
    assert row.meter_kind == "hot_water"


def test_a_flag_is_resolved_once_only(session: Session) -> None:
    seeded = seed(session, NOW, commit=False)
    op = Operator(login="olga", password_hash="x")
    session.add(op)
    session.flush()
    assert resolve_flag(session, seeded.flag_id, op.id, "accepted", "", NOW)
    assert not resolve_flag(session, seeded.flag_id, op.id, "rejected", "", NOW)
    flag = session.get(Flag, seeded.flag_id)
    assert flag is not None and flag.resolution == "accepted"


def test_a_flagged_reading_is_decided_once_only(session: Session) -> None:
    seeded = seed(session, NOW, commit=False)
    assert ledger.accept(session, seeded.reading_id).current
    with pytest.raises(LedgerError):
        ledger.accept(session, seeded.reading_id)
    with pytest.raises(LedgerError):
        ledger.reject(session, seeded.reading_id)


def test_figures_count_calls_readings_flags_and_drop_offs(session: Session) -> None:
    seed(session, NOW, commit=False)
    dropped = Call(
        call_sid="CAdrop",
        caller=CALLER,
        started_at=NOW - timedelta(minutes=5),
        ended_at=NOW - timedelta(minutes=4, seconds=30),
        state='{"step": "ask_value"}',
    )
    done = Call(call_sid="CAdone", caller=CALLER, started_at=NOW, state='{"step": "done"}')
    session.add_all([dropped, done])
    session.flush()
    detail = "звонок прервался на шаге confirm (статус completed); сохранено показаний: 1"
    session.add(Flag(reason="dropped_call", call_id=dropped.id, created_at=NOW))
    session.add(Flag(reason="dropped_call", call_id=done.id, detail=detail, created_at=NOW))
    session.flush()
    day = figures(session, NOW - timedelta(hours=7), NOW + timedelta(hours=17))
    assert day.calls == 3
    assert day.flags_by_reason == {"anomalous": 1, "dropped_call": 2}
    assert day.drop_offs == {"ask_value": 1, "confirm": 1}
    assert day.median_seconds == 60
    period = figures(session, NOW - timedelta(days=30), NOW + timedelta(days=1), period="2026-11")
    assert period.readings == 1 and period.readings_by_mode == {"speech": 1}

"""The hot path's statements (storage.steps), on SQLite and PostgreSQL: a step is written
whole or not at all, and only by the request that claimed it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import make_webhook_engine
from storage.models import Call, CallEvent, CallReply, Flag, RateLimitHit
from storage.steps import EventRow, FlagRow, StepStore, StepWrite

NOW = datetime(2026, 11, 24, 7, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def webhooks(database_url: str, clean_db: Engine) -> Iterator[Engine]:
    engine = make_webhook_engine(database_url)
    yield engine
    engine.dispose()


def _call(clean_db: Engine, seq: int = 1) -> int:
    with Session(clean_db) as session:
        call = Call(call_sid="CA1", caller="+79210000001", started_at=NOW, seq=seq, state="{}")
        session.add(call)
        session.commit()
        return call.id


def _count(clean_db: Engine, model: type) -> int:
    with Session(clean_db) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _step(call_id: int, seq: int) -> StepWrite:
    events = [EventRow("input", "нажато: 1"), EventRow("prompt", "Спасибо & до свидания")]
    flags = [FlagRow("no_input", "тишина")]
    return StepWrite(call_id, seq, '{"step": "done"}', "<Response />", NOW,
                     {"outcome": "completed"}, events, flags)  # fmt: skip


def test_a_claimed_step_writes_the_call_its_timeline_flags_and_reply(
    webhooks: Engine, clean_db: Engine
) -> None:
    call_id = _call(clean_db)
    store = StepStore(webhooks)
    with webhooks.connect() as conn:
        loaded = store.load(conn, "CA1")
        assert loaded is not None and loaded.seq == 1
        step = _step(call_id, 1)
        assert store.write(conn, store.step_claim(step), step)
        assert store.reply(conn, call_id, 1) == "<Response />"
    with Session(clean_db) as session:
        call = session.get_one(Call, call_id)
        assert (call.seq, call.state, call.outcome) == (2, '{"step": "done"}', "completed")
        texts = session.scalars(select(CallEvent.text).order_by(CallEvent.id)).all()
        assert texts == ["нажато: 1", "Спасибо & до свидания"]
        assert session.scalars(select(CallEvent.at)).first() == NOW
        assert session.scalars(select(Flag.reason)).all() == ["no_input"]


def test_a_step_another_request_claimed_writes_nothing(webhooks: Engine, clean_db: Engine) -> None:
    call_id = _call(clean_db, seq=2)  # the other request already moved the call on
    store = StepStore(webhooks)
    with webhooks.connect() as conn:
        step = _step(call_id, 1)
        assert not store.write(conn, store.step_claim(step), step)
        assert not store.claim(conn, store.step_claim(step), step)
    assert [_count(clean_db, m) for m in (CallEvent, Flag, CallReply)] == [0, 0, 0]
    with Session(clean_db) as session:
        assert session.get_one(Call, call_id).seq == 2


def test_a_failed_transaction_leaves_no_trace(webhooks: Engine, clean_db: Engine) -> None:
    call_id = _call(clean_db)
    store = StepStore(webhooks)
    with webhooks.connect() as conn:
        step = _step(call_id, 1)
        assert store.claim(conn, store.step_claim(step), step)
        store.rollback(conn)
    with Session(clean_db) as session:
        assert session.get_one(Call, call_id).seq == 1
    assert _count(clean_db, CallEvent) == 0


def test_a_new_call_is_stored_at_its_first_step_once(webhooks: Engine, clean_db: Engine) -> None:
    store = StepStore(webhooks)
    step = StepWrite(0, 0, "{}", "<Response><Gather /></Response>", NOW, {},
                     [EventRow("prompt", "Здравствуйте")])  # fmt: skip
    with webhooks.connect() as conn:
        assert store.write(conn, store.new_call(step, "CA2", "+79210000002"), step)
        found, hits = store.load_incoming(conn, "CA2", "+79210000002", NOW)
        assert found is not None and found.seq == 1 and hits == 1
        assert store.reply(conn, found.id, 0) == "<Response><Gather /></Response>"
        again = StepWrite(0, 0, "{}", "<Response />", NOW)
        with pytest.raises(IntegrityError):
            store.write(conn, store.new_call(again, "CA2", "+79210000002"), again)
    assert [_count(clean_db, m) for m in (Call, RateLimitHit, CallReply)] == [1, 1, 1]


def test_only_the_first_end_of_a_call_claims_its_outcome(
    webhooks: Engine, clean_db: Engine
) -> None:
    call_id = _call(clean_db)
    store = StepStore(webhooks)
    with webhooks.connect() as conn:
        first = StepWrite(call_id, 1, "{}", "", NOW, events=[EventRow("status", "completed")])
        assert store.write(conn, store.call_end(first, "dropped"), first, reply=False)
        assert not store.write(conn, store.call_end(first, "dropped"), first, reply=False)
    with Session(clean_db) as session:
        call = session.get_one(Call, call_id)
        assert (call.outcome, call.ended_at) == ("dropped", NOW)
    assert _count(clean_db, CallEvent) == 1

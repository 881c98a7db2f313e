"""The hot path's statements (storage.steps), on SQLite and PostgreSQL: a step is written
whole or not at all, and only by the request that claimed it."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, make_url, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage import ledger, steps
from storage.models import Call, CallEvent, CallReply, Flag, Reading
from storage.steps import EventRow, FlagRow, StepStore, StepWrite
from tests.support.data import add_account, add_meter

NOW = datetime(2026, 11, 24, 7, 0, 0, 123456, tzinfo=UTC)


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
        found = store.load(conn, "CA2")
        assert found is not None and found.seq == 1 and found.caller == "+79210000002"
        assert store.reply(conn, found.id, 0) == "<Response><Gather /></Response>"
        again = StepWrite(0, 0, "{}", "<Response />", NOW)
        with pytest.raises(IntegrityError):
            store.write(conn, store.new_call(again, "CA2", "+79210000002"), again)
    # The hourly limit is the counters' (storage.counters), counted before: the write adds
    # the call and its reply, nothing else.
    assert [_count(clean_db, m) for m in (Call, CallReply)] == [1, 1]


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


def test_the_status_of_a_finished_call_closes_it_in_one_statement(
    webhooks: Engine, clean_db: Engine
) -> None:
    if webhooks.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's shortcut; SQLite reads the call first")
    finished, open_ = _call(clean_db), None
    with Session(clean_db) as session:
        session.get_one(Call, finished).outcome = "completed"
        other = Call(call_sid="CA9", caller="", started_at=NOW, seq=3, state="{}")
        session.add(other)
        session.commit()
        open_ = other.id
    store = StepStore(webhooks)
    with webhooks.connect() as conn:
        assert store.close_finished(conn, "CA1", "completed", NOW)
        assert not store.close_finished(conn, "CA9", "completed", NOW)  # its flow never ended
        assert not store.close_finished(conn, "CA404", "completed", NOW)
    with Session(clean_db) as session:
        assert session.get_one(Call, finished).ended_at == NOW
        assert session.get_one(Call, open_).ended_at is None
        events = session.execute(select(CallEvent.call_id, CallEvent.seq, CallEvent.kind,
                                        CallEvent.text)).all()  # fmt: skip
    assert [tuple(e) for e in events] == [(finished, 1, "status", "completed")]


def _reading_meter(clean_db: Engine) -> int:
    with Session(clean_db) as session:
        account = add_account(session)
        meter = add_meter(session, account, now=NOW)
        session.commit()
        return meter.id


def _a_reading(clean_db: Engine, value: str, key: str) -> tuple[int, int, str, ledger.NewReading]:
    """A meter, a call at step 1, the period of NOW and a reading of `value` by that call
    for that meter: (meter id, call id, period, the reading)."""
    meter_id = _reading_meter(clean_db)
    call_id = _call(clean_db)
    period = NOW.strftime("%Y-%m")
    new = ledger.NewReading(meter_id=meter_id, value=Decimal(value), taken_at=NOW,
                            period=period, source="ivr", call_id=call_id,
                            idempotency_key=key)  # fmt: skip
    return meter_id, call_id, period, new


def test_a_claimed_reading_step_holds_the_lock_and_reads_the_period(
    webhooks: Engine, clean_db: Engine
) -> None:
    """claim_reading: the claim, the meter's lock, the period's open rows and the new id;
    the ledger's statements then store the reading with the step's rows, all or nothing."""
    meter_id, call_id, period, new = _a_reading(clean_db, "112.5", "ivr:CA1:m1")
    store = StepStore(webhooks)
    with webhooks.connect() as conn:
        step = _step(call_id, 1)
        claimed = store.claim_reading(conn, store.step_claim(step), step, meter_id, period)
        assert claimed is not None
        reading_id, rows = claimed
        assert rows == []  # the history is of earlier periods
        plan = ledger.plan_store(new, rows)
        store.finish(conn, step, before=store.reading_statements(new, reading_id, plan))
        lost = _step(call_id, 1)  # the same step again: claimed already
        assert store.claim_reading(conn, store.step_claim(lost), lost, meter_id, period) is None
        # A later reading of the period replaces this one: the rows show it as current.
        step2 = _step(call_id, 2)
        claimed2 = store.claim_reading(conn, store.step_claim(step2), step2, meter_id, period)
        assert claimed2 is not None and [r.id for r in claimed2[1]] == [reading_id]
        assert claimed2[1][0].value == Decimal("112.5") and claimed2[1][0].taken_at == NOW
        store.rollback(conn)
    with Session(clean_db) as session:
        stored = session.get_one(Reading, reading_id)
        assert (stored.value, stored.status, stored.replaced_by_id) == (
            Decimal("112.5"),
            "accepted",
            None,
        )
        assert session.get_one(Call, call_id).seq == 2


def _commit_setting_of(webhooks: Engine, write: Callable[[Connection], bool]) -> tuple[str, str]:
    """synchronous_commit as `write(conn)`'s statement left its transaction (opened here
    around it, so that it can be read before the commit), and after that commit."""
    with webhooks.connect() as conn:
        conn.exec_driver_sql("BEGIN")
        assert write(conn)
        inside = conn.exec_driver_sql("SELECT current_setting('synchronous_commit')").scalar()
        conn.exec_driver_sql("COMMIT")
        after = conn.exec_driver_sql("SELECT current_setting('synchronous_commit')").scalar()
    return str(inside), str(after)


def test_on_postgresql_only_a_step_that_raises_a_flag_waits_for_the_disk(
    webhooks: Engine, clean_db: Engine
) -> None:
    """A step that only moves the dialogue on commits asynchronously, for its own transaction
    only; one that raises a flag (an operator's work) waits for the WAL's flush, as the
    ledger's transaction does. Both are written whole."""
    if webhooks.dialect.name != "postgresql":
        pytest.skip("asynchronous commit is PostgreSQL's")
    call_id = _call(clean_db)
    store = StepStore(webhooks)
    dialogue = StepWrite(call_id, 1, '{"step": "value"}', "<Response />", NOW, {},
                         [EventRow("prompt", "Назовите показание")])  # fmt: skip
    flagged = _step(call_id, 2)
    assert _commit_setting_of(
        webhooks, lambda c: store.write(c, store.step_claim(dialogue), dialogue)
    ) == ("off", "on")
    assert _commit_setting_of(
        webhooks, lambda c: store.write(c, store.step_claim(flagged), flagged)
    ) == ("on", "on")
    with Session(clean_db) as session:
        session.get_one(Call, call_id).outcome = "completed"
        session.commit()
    assert _commit_setting_of(
        webhooks, lambda c: store.close_finished(c, "CA1", "completed", NOW)
    ) == ("off", "on")
    new_call = StepWrite(0, 0, "{}", "<Response />", NOW, {}, [EventRow("prompt", "Алло")])
    assert _commit_setting_of(
        webhooks,
        lambda c: store.write(c, store.new_call(new_call, "CA3", "+79210000003"), new_call),
    ) == ("off", "on")
    with Session(clean_db) as session:
        assert session.get_one(Call, call_id).seq == 3
        assert session.get_one(Call, call_id).ended_at == NOW
        assert _count(clean_db, CallReply) == 3 and _count(clean_db, Flag) == 1


def _traced(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the statements SQLite runs on this connection (its trace callback) and,
    in the same list, "sync PATH" for each file synced by storage.steps."""
    seen: list[str] = []
    conn.connection.dbapi_connection.set_trace_callback(seen.append)  # type: ignore[union-attr]
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        seen.append("sync " + os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(steps.os, "fdatasync", fdatasync)
    return seen


def test_on_sqlite_a_reading_or_a_flag_is_synced_to_disk_after_its_commit(
    webhooks: Engine, clean_db: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhooks' connections commit without syncing the WAL (NORMAL, so that no worker
    waits for another's disk under the write lock); a step that stores a reading or raises a
    flag syncs the WAL file once its COMMIT is through, before it returns. Every other
    engine syncs every commit (FULL)."""
    if webhooks.dialect.name != "sqlite":
        pytest.skip("SQLite's WAL file")
    wal = os.path.realpath(make_url(database_url).database or "") + "-wal"
    meter_id, call_id, period, new = _a_reading(clean_db, "7", "ivr:CA1:m2")
    store = StepStore(webhooks)
    normal, full = 1, 2
    with webhooks.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == normal
        seen = _traced(conn, monkeypatch)
        dialogue = StepWrite(call_id, 1, "{}", "<Response />", NOW, {}, [EventRow("prompt", "…")])
        assert store.write(conn, store.step_claim(dialogue), dialogue)
        assert "COMMIT" in seen and not [s for s in seen if s.startswith("sync")]
        seen.clear()
        reading = StepWrite(call_id, 2, "{}", "<Response />", NOW)
        claimed = store.claim_reading(conn, store.step_claim(reading), reading, meter_id, period)
        assert claimed is not None
        plan = ledger.plan_store(new, claimed[1])
        store.finish(conn, reading, before=store.reading_statements(new, claimed[0], plan))
        # (the first sync asks SQLite for the database's file: PRAGMA database_list)
        assert [s for s in seen if not s.startswith("PRAGMA")][-2:] == ["COMMIT", f"sync {wal}"]
        flagged = _step(call_id, 3)
        assert store.write(conn, store.step_claim(flagged), flagged)
        assert seen[-2:] == ["COMMIT", f"sync {wal}"]
        seen.clear()
        lost = _step(call_id, 3)  # claimed already: rolled back, nothing to sync
        assert not store.write(conn, store.step_claim(lost), lost)
        assert not [s for s in seen if s.startswith("sync")]
    with clean_db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == full
    with Session(clean_db) as session:
        assert session.get_one(Reading, claimed[0]).value == Decimal("7")
        assert session.get_one(Call, call_id).seq == 4


def test_syncing_a_wal_that_is_gone_is_nothing_to_do(tmp_path: Path) -> None:
    """The last connection's close checkpoints the WAL into a synced database file and
    deletes it: then there is nothing left to sync."""
    steps.sync_wal(str(tmp_path / "gone.db-wal"))

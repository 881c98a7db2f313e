"""Issue 8, cases 3 and 4: concurrent writers of one meter's readings. The lock-order and
deadlock tests need PostgreSQL's row locks; the racing calls and forms run on both databases."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callflows.model import Note, StoreReading
from ivr.voice.effects import StepInfo, apply_effects
from storage import ledger
from storage.ledger_retry import retrying
from storage.models import Call, CallEvent, Flag, Meter, Reading
from tests.browser.seed import operator
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW
from tests.webhooks.test_operator_access import sign_in, token

ON_POSTGRES = bool(os.environ.get("METERLINE_TEST_DATABASE_URL"))
postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="row locks: PostgreSQL only")


def run_together(*work: Callable[[], object], timeout: float = 60) -> list[object]:
    """Run each callable in its own thread, released at once; their results, in order."""
    barrier = threading.Barrier(len(work))
    results: list[object] = [None] * len(work)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work[i]()
        except Exception as exc:  # reported to the test, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a writer is stuck (a lock that is never released?)"
    return results


def current_per_meter(engine: Engine) -> dict[int, int]:
    with Session(engine) as session:
        stmt = (
            select(Reading.meter_id, func.count())
            .where(Reading.status == "accepted", Reading.replaced_by_id.is_(None))
            .where(Reading.period == "2026-11")
            .group_by(Reading.meter_id)
        )
        return dict(session.execute(stmt).all())


@pytest.fixture
def account_meter(frozen_app: Flask) -> tuple[int, int]:
    """Account 1001001 (+79211234567) with one hot-water meter; (account id, meter id)."""
    with frozen_app.extensions["meterline"].sessions() as session:
        account = add_account(session)
        meter = add_meter(session, account, now=IN_WINDOW)
        session.commit()
        return account.id, meter.id


def _call(session: Session, sid: str, account_id: int) -> Call:
    call = Call(call_sid=sid, caller="+79211234567", account_id=account_id, started_at=IN_WINDOW)
    session.add(call)
    session.flush()
    return call


@postgres_only
def test_case_3_a_timeline_note_written_first_cannot_deadlock_two_stores(
    frozen_app: Flask, engine: Engine, account_meter: tuple[int, int]
) -> None:
    """Call B's note holds KEY SHARE on the meter (its foreign key) while call A stores; the
    meter lock lets A through, and B stores after: both readings kept, one current."""
    account_id, meter_id = account_meter
    with Session(engine) as setup:
        ids = _call(setup, "CAa", account_id).id, _call(setup, "CAb", account_id).id
        setup.commit()
    call_a, call_b = ids
    b = Session(engine)
    b.execute(text("SET LOCAL lock_timeout = '20s'"))
    b.add(CallEvent(call_id=call_b, seq=1, kind="input", text="нажато: 1", meter_id=meter_id))
    b.flush()  # B's transaction now holds KEY SHARE on the meter row

    def store_a() -> None:
        with Session(engine) as a:
            a.execute(text("SET LOCAL lock_timeout = '20s'"))
            call = a.get(Call, call_a)
            assert call is not None
            info = StepInfo(call=call, seq=1, period="2026-11", now=IN_WINDOW)
            actions = [
                Note("input", "нажато: 1", meter_id),
                StoreReading(key="m", meter_id=meter_id, value=Decimal(112), status="accepted"),
            ]
            apply_effects(a, info, actions)
            a.commit()

    [done] = run_together(store_a, timeout=15)
    assert done is None, done
    call = b.get(Call, call_b)
    assert call is not None
    later = IN_WINDOW + timedelta(seconds=5)
    info = StepInfo(call=call, seq=1, period="2026-11", now=later)
    store = StoreReading(key="m", meter_id=meter_id, value=Decimal(113), status="accepted")
    apply_effects(b, info, [store])
    b.commit()
    b.close()
    with Session(engine) as check:
        rows = check.execute(
            select(Reading.value, Reading.replaced_by_id).where(Reading.source == "ivr")
        ).all()
    assert sorted(v for v, _ in rows) == [Decimal(112), Decimal(113)]
    assert current_per_meter(engine)[meter_id] == 1


@postgres_only
def test_case_3_a_real_deadlock_is_retried_and_both_writers_succeed(
    frozen_app: Flask, engine: Engine
) -> None:
    with Session(engine) as setup:
        account = add_account(setup)
        m1 = add_meter(setup, account, serial="A1", history=())
        m2 = add_meter(setup, account, serial="A2", history=())
        setup.commit()
        first, second = m1.id, m2.id
    both_hold_one = threading.Barrier(2)
    attempts: list[str] = []

    def locking(order: tuple[int, int], name: str) -> Callable[[], str]:
        def work() -> str:
            attempts.append(name)
            with Session(engine) as s:
                s.execute(select(Meter.id).where(Meter.id == order[0]).with_for_update())
                if attempts.count(name) == 1:  # the first try of each meets the other
                    both_hold_one.wait(10)
                s.execute(select(Meter.id).where(Meter.id == order[1]).with_for_update())
                s.commit()
            return name

        return lambda: retrying(work)

    results = run_together(locking((first, second), "x"), locking((second, first), "y"))
    assert results == ["x", "y"]
    assert len(attempts) == 3  # PostgreSQL chose one victim; its retry succeeded


def test_case_3_two_calls_confirming_one_meter_at_once_both_store_and_hear_the_truth(
    frozen_app: Flask, engine: Engine, account_meter: tuple[int, int]
) -> None:
    _, meter_id = account_meter
    for value in ("112", "115", "118"):
        callers = [TwilioClient(frozen_app.test_client(), TEST_TOKEN) for _ in range(2)]
        for twilio in callers:
            twilio.start()
            twilio.answer(value)
        said = run_together(*(lambda t=t: spoken_text(t.answer("1")) for t in callers))
        for words in said:
            assert isinstance(words, str), words
            assert "Извините" not in words and "Принято." in words
    with Session(engine) as check:
        stored = check.scalar(select(func.count()).where(Reading.source == "ivr"))
        errors = check.scalar(select(func.count()).where(Flag.reason == "system_error"))
    assert stored == 6 and errors == 0
    assert current_per_meter(engine) == {meter_id: 1}


@pytest.fixture
def twenty_meters(app: Flask) -> tuple[str, list[int]]:
    """Account 100200300 with twenty meters, and operator olga; (number, meter ids)."""
    with app.extensions["meterline"].sessions() as session:
        account = add_account(session, number="100200300")
        ids = [add_meter(session, account, serial=f"M{i:02d}", now=IN_WINDOW).id for i in range(20)]
        operator(session, "olga")
        session.commit()
    app.extensions["meterline"].clock = lambda: IN_WINDOW
    return "100200300", ids


def _entry_form(app: Flask, number: str, meter_id: int, value: str) -> Callable[[], int]:
    """A signed-in operator's checked "Сохранить" form, ready to post (returns the status)."""
    client = app.test_client()
    assert sign_in(client, "olga") == 302
    url = f"/operator/accounts/{number}/readings"
    form = {"meter_id": str(meter_id), "value": value, "action": "check"}
    form["csrf_token"] = token(client, f"/operator/accounts/{number}")
    page = client.post(url, data=form).text
    found = re.search(r'name="once" value="([^"]+)"', page)
    assert found, page
    form.update(action="save", checked=value, once=found[1])
    return lambda: client.post(url, data=form).status_code


def operator_readings(engine: Engine) -> dict[int, int]:
    """Per meter, how many readings operators stored."""
    with Session(engine) as check:
        stmt = select(Reading.meter_id, func.count()).where(Reading.source == "operator")
        return dict(check.execute(stmt.group_by(Reading.meter_id)).all())


def test_case_4_a_double_submitted_entry_form_stores_once(
    app: Flask, engine: Engine, twenty_meters: tuple[str, list[int]]
) -> None:
    number, ids = twenty_meters
    for meter_id in ids:
        post = _entry_form(app, number, meter_id, "110")
        assert run_together(post, post) == [302, 302]
    assert operator_readings(engine) == dict.fromkeys(ids, 1)


def test_case_4_two_operators_entering_at_once_leave_one_current_reading(
    app: Flask, engine: Engine, twenty_meters: tuple[str, list[int]]
) -> None:
    number, ids = twenty_meters
    for meter_id in ids:
        forms = [_entry_form(app, number, meter_id, value) for value in ("110", "111")]
        assert run_together(*forms) == [302, 302]
    assert current_per_meter(engine) == dict.fromkeys(ids, 1)
    assert operator_readings(engine) == dict.fromkeys(ids, 2)


def test_the_ledger_refuses_a_second_current_reading_even_without_the_lock(
    frozen_app: Flask, engine: Engine, account_meter: tuple[int, int]
) -> None:
    """The schema, not the code, has the last word: a writer that bypasses the ledger's
    replace rule gets an error instead of a second current reading."""
    _, meter_id = account_meter
    new = ledger.NewReading(
        meter_id, Decimal(112), IN_WINDOW, "2026-11", "operator", created_at=IN_WINDOW
    )
    with Session(engine) as s:
        ledger.store(s, new)
        s.commit()
    with Session(engine) as s, pytest.raises(IntegrityError, match="uq_readings_current|UNIQUE"):
        s.execute(insert(Reading).values(**asdict(new)))
        s.commit()
    assert current_per_meter(engine) == {meter_id: 1}

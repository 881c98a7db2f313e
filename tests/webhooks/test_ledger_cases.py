"""Issue 8's cases through the real webhooks, operator pages and export, on either database:
every confirmed reading counts once, for the month the call was let in for."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from ivr.voice import effects
from storage.ledger import store as real_store
from storage.models import Account, Call, CallEvent, Flag, Reading
from storage.steps import StepStore
from tests.browser.seed import operator
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW
from tests.webhooks.test_operator_access import sign_in, token

real_run = StepStore._run

STATES = Path(__file__).parents[1] / "unit" / "states"


class Clock:
    """The line's clock, moved by the test."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: Flask) -> Clock:
    """The app's clock, starting inside the window."""
    moving = Clock(IN_WINDOW)
    app.extensions["meterline"].clock = moving
    return moving


@pytest.fixture
def meter_id(app: Flask, clock: Clock) -> int:
    """Account 1001001 (+79211234567), one hot-water meter: 100, 103, 106, 109 a month apart."""
    with app.extensions["meterline"].sessions() as session:
        account = add_account(session)
        meter = add_meter(session, account, now=IN_WINDOW)
        session.commit()
        return meter.id


def call(app: Flask, *keys: str) -> list[str]:
    """A whole call from the account's phone: each answer's spoken text."""
    twilio = TwilioClient(app.test_client(), TEST_TOKEN)
    said = [spoken_text(twilio.start())]
    for digits in keys:
        said.append(spoken_text(twilio.answer(digits)))
    return said


def export(app: Flask, period: str) -> list[list[str]]:
    """`meterline export readings --period`: the rows after the header."""
    result = app.test_cli_runner().invoke(args=["export", "readings", "--period", period])
    assert result.exit_code == 0, result.output
    return list(csv.reader(io.StringIO(result.stdout)))[1:]


def ivr_readings(app: Flask) -> list[Reading]:
    with app.extensions["meterline"].sessions() as session:
        stmt = select(Reading).where(Reading.source == "ivr").order_by(Reading.id)
        return list(session.scalars(stmt))


def test_case_1_a_later_call_replaces_the_accepted_reading_not_a_pending_flagged_one(
    app: Flask, clock: Clock, meter_id: int
) -> None:
    call(app, "112", "1")  # A: plausible, accepted
    clock.now += timedelta(minutes=10)
    said_b = call(app, "200", "1")  # B: anomalous, flagged
    assert "сто двенадцать" in said_b[1]  # B would replace A, once accepted
    clock.now += timedelta(minutes=10)
    said_c = call(app, "113", "1")  # C: a plausible correction
    assert "заменит переданное ранее за этот месяц: сто двенадцать" in said_c[1]
    assert "двести" not in said_c[1]
    a, b, c = ivr_readings(app)
    assert (a.replaced_by_id, b.replaced_by_id, c.replaced_by_id) == (c.id, c.id, None)
    assert b.status == "flagged"
    assert [row[3] for row in export(app, "2026-11")] == ["113"]

    with app.extensions["meterline"].sessions() as session:
        operator(session, "olga")
        flag = session.scalars(select(Flag).where(Flag.reading_id == b.id)).one()
    client = app.test_client()
    assert sign_in(client, "olga") == 302
    page = client.get(f"/operator/calls/{flag.call_id}").text
    assert "позднее передано <b>113</b>" in page  # the flag shows what superseded it
    form = {"action": "accept", "csrf_token": token(client, "/operator/")}
    done = client.post(f"/operator/flags/{flag.id}/decision", data=form, follow_redirects=True)
    assert "Показание принято" in done.text and "более позднее показание 113" in done.text
    with app.extensions["meterline"].sessions() as session:
        resolved = session.get(Flag, flag.id)
        assert resolved is not None and resolved.status == "resolved"
    assert [row[3] for row in export(app, "2026-11")] == ["113"]


def test_case_2_a_call_let_in_on_the_windows_last_evening_counts_for_that_month(
    app: Flask, clock: Clock, meter_id: int
) -> None:
    call(app, "112", "1")  # the 24th: November's reading
    # 25 November, 23:59 in Vologda (UTC+3): let in on the window's last day ...
    clock.now = datetime(2026, 11, 25, 20, 59, tzinfo=UTC)
    twilio = TwilioClient(app.test_client(), TEST_TOKEN)
    twilio.start()
    clock.now = datetime(2026, 11, 25, 21, 1, tzinfo=UTC)  # ... confirming at 00:01 on the 26th
    twilio.answer("113")
    twilio.answer("1")
    first, second = ivr_readings(app)
    assert second.period == "2026-11" and first.replaced_by_id == second.id
    assert [row[3] for row in export(app, "2026-11")] == ["113"]
    assert export(app, "2026-12") == []


def _format_1_state(app: Flask, meter_id: int, inactive_id: int) -> str:
    """The kept format-1 sample (a call at its confirmation), bound to this database's rows."""
    data = json.loads((STATES / "format_1.json").read_text(encoding="utf-8"))
    with app.extensions["meterline"].sessions() as session:
        account = session.scalars(select(Account)).one()
        data["account"].update(id=account.id, number=account.number)
    first, second = data["account"]["meters"]
    first["id"], second["id"] = meter_id, inactive_id
    return json.dumps(data, ensure_ascii=False)


def test_case_5_a_call_in_progress_survives_an_upgrade_of_the_state_format(
    app: Flask, clock: Clock, meter_id: int
) -> None:
    with app.extensions["meterline"].sessions() as session:
        account = session.scalars(select(Account)).one()
        inactive = add_meter(session, account, serial="0999", kind="heat", history=(), active=False)
        session.commit()
        inactive_id = inactive.id
    twilio = TwilioClient(app.test_client(), TEST_TOKEN)
    twilio.start()
    twilio.answer("112")  # at the confirmation when the new code arrives
    with app.extensions["meterline"].sessions() as session:
        session.execute(update(Call).values(state=_format_1_state(app, meter_id, inactive_id)))
        session.commit()
    said = spoken_text(twilio.answer("1"))
    assert "Извините" not in said and "Принято одно показание" in said
    [stored] = ivr_readings(app)
    assert str(stored.value) == "140.25" and stored.period == "2026-11"  # the sample's value
    assert twilio.post("/voice/status", CallStatus="completed").status_code == 200
    with app.extensions["meterline"].sessions() as session:
        done = session.scalars(select(Call)).one()
        assert done.outcome == "completed" and done.ended_at is not None


@pytest.mark.parametrize("bad_state", ['{"format": 99, "step": "value"}', "{not json", "[]"])
def test_case_5_a_status_callback_closes_a_call_whose_state_cannot_be_read(
    app: Flask, clock: Clock, meter_id: int, bad_state: str
) -> None:
    twilio = TwilioClient(app.test_client(), TEST_TOKEN)
    twilio.start()
    with app.extensions["meterline"].sessions() as session:
        session.execute(update(Call).values(state=bad_state))
        session.commit()
    assert twilio.post("/voice/status", CallStatus="completed").status_code == 200
    with app.extensions["meterline"].sessions() as session:
        done = session.scalars(select(Call)).one()
        assert done.ended_at is not None and done.outcome == "dropped"
        reasons = list(session.scalars(select(Flag.reason)))
        assert reasons == ["dropped_call"]


class Deadlock(Exception):
    """What psycopg raises when PostgreSQL picks this transaction as a deadlock's victim."""

    sqlstate = "40P01"


def _failing_store(monkeypatch: pytest.MonkeyPatch, times: int, error: Exception) -> dict[str, int]:
    """The reading's store failing its first `times` attempts with `error` (a fault at the
    driver's edge), whichever way the step stores it: the webhooks' prebuilt statements
    (storage.steps.StepStore._run, when they insert into readings) or the Core ledger
    (ledger.store). Returns the count of failed attempts."""
    calls = {"n": 0}

    def store(db: object, new: object) -> object:
        calls["n"] += 1
        if calls["n"] <= times:
            raise OperationalError("INSERT INTO readings …", {}, error)
        return real_store(db, new)  # type: ignore[arg-type]

    def run(self: StepStore, conn: object, statements: list[tuple[str, list[object]]],
            results: tuple[int, ...] = ()) -> object:  # fmt: skip
        if any(sql.startswith("INSERT INTO readings") for sql, _ in statements):
            calls["n"] += 1
            if calls["n"] <= times:
                raise OperationalError("INSERT INTO readings …", {}, error)
        return real_run(self, conn, statements, results)  # type: ignore[arg-type]

    monkeypatch.setattr(effects.ledger, "store", store)
    monkeypatch.setattr(StepStore, "_run", run)
    return calls


def test_case_3_a_deadlock_while_storing_is_retried_unheard_by_the_caller(
    app: Flask, clock: Clock, meter_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = _failing_store(monkeypatch, 2, Deadlock("deadlock detected"))
    said = call(app, "112", "1")
    assert failed["n"] == 3  # two attempts failed, the third stored
    assert "Принято." in said[-1] and "Извините" not in said[-1]
    [stored] = ivr_readings(app)
    assert str(stored.value) == "112"
    with app.extensions["meterline"].sessions() as session:
        assert list(session.scalars(select(Flag.reason))) == []


def test_case_3_when_a_store_fails_the_apology_says_what_was_saved_and_what_was_not(
    app: Flask, clock: Clock, meter_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.extensions["meterline"].sessions() as session:
        account = session.scalars(select(Account)).one()
        add_meter(session, account, serial="0245679", kind="cold_water", now=IN_WINDOW)
        session.commit()
    twilio = TwilioClient(app.test_client(), TEST_TOKEN)
    twilio.start()
    twilio.answer("112")
    twilio.answer("1")  # the first meter is stored
    twilio.answer("120")
    _failing_store(monkeypatch, 99, OSError("disk full"))
    said = spoken_text(twilio.answer("1"))
    assert "Извините, произошла техническая ошибка." in said
    assert "Сохранено показаний за этот звонок: одно." in said
    assert "Показание сто двадцать не сохранено." in said
    assert "подтверждённые показания сохранены" not in said
    assert [str(r.value) for r in ivr_readings(app)] == ["112"]


def test_a_used_idempotency_key_stores_nothing_and_the_step_still_answers(
    app: Flask, clock: Clock, meter_id: int
) -> None:
    """The webhooks' prebuilt store inserts without ON CONFLICT: when the reading's key is
    used already, its transaction fails and the step is stored again the Core way, which
    stores nothing and notes why, and the caller hears the step go on, not an apology."""
    twilio = TwilioClient(app.test_client(), TEST_TOKEN)
    twilio.start()
    twilio.answer("112")
    with app.extensions["meterline"].sessions() as session:  # the key, used by another path
        session.add(Reading(
            meter_id=meter_id, value=112, taken_at=IN_WINDOW, period=IN_WINDOW.strftime("%Y-%m"),
            source="ivr", status="flagged", idempotency_key=f"ivr:{twilio.call_sid}:m{meter_id}",
        ))  # fmt: skip
        session.commit()
    said = spoken_text(twilio.answer("1"))
    assert "Извините" not in said and "Принято" in said
    assert len(ivr_readings(app)) == 1
    with app.extensions["meterline"].sessions() as session:
        notes = list(session.scalars(select(CallEvent.text).where(CallEvent.kind == "decision")))
        calls = list(session.scalars(select(Call.seq)))
    assert any(note.startswith("показание уже сохранено ранее") for note in notes)
    assert calls == [3]  # the step was claimed once, by the Core retry

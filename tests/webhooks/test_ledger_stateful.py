"""The ledger's invariants under any interleaving (a hypothesis state machine, on the real
database and the real webhooks): calls accepted, flagged, dropped, let in before midnight and
confirmed after; operators accepting, correcting, rejecting and entering; imports; the clock
crossing the window's edges. After every step:

- each meter and period has at most one current reading, and it is the one taken last;
- the export of every period is exactly that set;
- no confirmed reading is lost or stored twice;
- a call's readings count for the period it was let in for.

The example budget comes from METERLINE_LEDGER_EXAMPLES: 60 per database by default, about 25 s
on SQLite and 20 s on PostgreSQL here, so about a minute in CI's two passes. Raise it locally
to search harder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ivr.billing.csvin import open_table
from ivr.billing.readings_import import COLUMNS, import_readings
from ivr.operator.checks import DecisionError
from ivr.operator.decisions import decide
from ivr.operator.entry import enter_reading
from storage.exports import billed_readings
from storage.ledger import period_of
from storage.models import Account, Call, Flag, Operator, Reading
from tests.conftest import TEST_TOKEN, empty_tables
from tests.support.data import add_account, add_meter
from tests.support.twilio import TwilioClient, spoken_text
from tests.webhooks.conftest import IN_WINDOW

ZONE = ZoneInfo("Europe/Moscow")
WINDOW = (23, 25)
EXAMPLES = int(os.environ.get("METERLINE_LEDGER_EXAMPLES", "60"))
CONFIRM = "Если верно, нажмите 1"
VALUES = st.integers(min_value=100, max_value=900)


def local(day: datetime, on: int, at: time) -> datetime:
    """Day `on` of `day`'s local month at local time `at`."""
    here = day.astimezone(ZONE)
    return datetime.combine(here.date().replace(day=on), at, ZONE)


class Ledger(RuleBasedStateMachine):
    """Random histories of one account with two meters."""

    app: Flask
    engine: Engine

    def __init__(self) -> None:
        super().__init__()
        empty_tables(self.engine)
        self.now = IN_WINDOW
        self.svc = self.app.extensions["meterline"]
        self.svc.clock = lambda: self.now
        with self.svc.sessions() as session:
            account = add_account(session)
            self.account_number = account.number
            self.meters = [
                add_meter(session, account, serial=f"A{i}", now=IN_WINDOW).id for i in (1, 2)
            ]
            op = Operator(login="olga", password_hash="-")
            session.add(op)
            session.commit()
            self.operator_id = op.id
        # Every reading there must be: (meter, value, source) -> how many; the seeded history
        # first, then each confirmation the machine makes.
        self.confirmed = self._stored()
        self.admitted: dict[str, str] = {}  # call sid -> the period it was let in for
        self.periods: set[str] = {period_of(IN_WINDOW, ZONE, WINDOW)}
        self.stamp = 0

    def teardown(self) -> None:
        self.svc.clock = lambda: IN_WINDOW

    # --- the line ---

    def _call(self, values: list[int], hang_up_at: int | None, later: timedelta) -> None:
        twilio = TwilioClient(self.app.test_client(), TEST_TOKEN)
        self.admitted[twilio.call_sid] = period_of(self.now, ZONE, WINDOW)
        self.periods.add(self.admitted[twilio.call_sid])
        root = twilio.start()
        self.now += later
        meter = 0
        for _ in range(4 * len(values)):
            if root.find("Gather") is None or meter >= len(values):
                break
            if CONFIRM in spoken_text(root):
                if meter == hang_up_at:
                    break
                root = twilio.answer("1")
                self.confirmed[(self.meters[meter], Decimal(values[meter]), "ivr")] += 1
                meter += 1
            else:  # the value prompt (again, after a value below the previous one)
                root = twilio.answer(str(values[meter]))
        twilio.post("/voice/status", CallStatus="completed")

    @rule(values=st.lists(VALUES, min_size=2, max_size=2))
    def call_confirming_both(self, values: list[int]) -> None:
        self._call(values, None, timedelta(seconds=30))

    @rule(values=st.lists(VALUES, min_size=2, max_size=2), at=st.sampled_from([0, 1]))
    def call_dropped_before_confirming(self, values: list[int], at: int) -> None:
        self._call(values, at, timedelta(seconds=30))

    @rule(values=st.lists(VALUES, min_size=2, max_size=2))
    def call_let_in_before_midnight_confirmed_after(self, values: list[int]) -> None:
        edge = local(self.now, WINDOW[1], time(23, 59))
        if edge <= self.now:
            return
        self.now = edge
        self._call(values, None, timedelta(minutes=2))

    # --- operators ---

    def _open_flags(self) -> list[int]:
        with self.svc.sessions() as session:
            stmt = select(Flag.id).where(Flag.status == "open", Flag.meter_id.is_not(None))
            return list(session.scalars(stmt.order_by(Flag.id)))

    def _decide(self, pick: int, form: dict[str, str]) -> None:
        flags = self._open_flags()
        if not flags:
            return
        if form["action"] == "correct" and self._stored_under(form["once"]):
            self._decide_again(flags[pick % len(flags)], form)
            return
        with self.svc.sessions() as session, contextlib.suppress(DecisionError):
            # A decision the rules refuse (DecisionError) is the operator's screen saying why.
            decide(session, self.svc.settings, flags[pick % len(flags)], self.operator_id, form,
                   self.now)  # fmt: skip
        if form["action"] == "correct":
            with self.svc.sessions() as session:
                meter = session.scalar(select(Reading.meter_id).where(
                    Reading.idempotency_key == f"operator:{form['once']}"))  # fmt: skip
            if meter is not None:
                self.confirmed[(meter, Decimal(form["value"]), "operator")] += 1

    def _stored_under(self, once: str) -> bool:
        with self.svc.sessions() as session:
            key = f"operator:{once}"
            return (
                session.scalar(select(Reading.id).where(Reading.idempotency_key == key)) is not None
            )

    def _decide_again(self, flag_id: int, form: dict[str, str]) -> None:
        """The same form posted again: it must store nothing."""
        with self.svc.sessions() as session:
            assert decide(session, self.svc.settings, flag_id, self.operator_id, form, self.now)

    def _stored(self) -> Counter[tuple[int, Decimal, str]]:
        with Session(self.engine) as session:
            stmt = select(Reading.meter_id, Reading.value, Reading.source, func.count())
            rows = session.execute(stmt.group_by(Reading.meter_id, Reading.value, Reading.source))
            return Counter({(m, v, src): n for m, v, src, n in rows})

    @rule(pick=st.integers(0, 9))
    def operator_accepts(self, pick: int) -> None:
        self._decide(pick, {"action": "accept"})

    @rule(pick=st.integers(0, 9))
    def operator_rejects(self, pick: int) -> None:
        self._decide(pick, {"action": "reject", "note": "ошибка абонента"})

    @rule(pick=st.integers(0, 9), value=VALUES, twice=st.booleans())
    def operator_corrects(self, pick: int, value: int, twice: bool) -> None:
        once = secrets.token_urlsafe(16)
        form = {"action": "correct", "value": str(value), "checked": str(value), "once": once}
        for _ in range(2 if twice else 1):  # a double-submitted form: stored once
            self._decide(pick, form)

    @rule(meter=st.sampled_from([0, 1]), value=VALUES, twice=st.booleans())
    def operator_enters(self, meter: int, value: int, twice: bool) -> None:
        form = {
            "meter_id": str(self.meters[meter]),
            "value": str(value),
            "action": "save",
            "checked": str(value),
            "once": secrets.token_urlsafe(16),
        }
        for _ in range(2 if twice else 1):
            with self.svc.sessions() as session:
                account = session.scalars(select(Account)).one()
                enter_reading(session, self.svc.settings, account, self.operator_id, form, self.now)
        self.confirmed[(self.meters[meter], Decimal(value), "operator")] += 1
        self.periods.add(period_of(self.now, ZONE, WINDOW))

    # --- the billing centre, and time ---

    @rule(meter=st.sampled_from([0, 1]), value=VALUES, days_ago=st.integers(0, 40))
    def billing_centre_imports(self, meter: int, value: int, days_ago: int) -> None:
        self.stamp += 1
        # The importer refuses readings from the future by the real clock, not the line's.
        taken = min(self.now, datetime.now(UTC)) - timedelta(days=days_ago, seconds=self.stamp)
        serial = f"A{meter + 1}"
        data = f"meter_serial,taken_at,value\n{serial},{taken.isoformat()},{value}\n"
        report = import_readings(self.svc.sessions, open_table(data.encode(), COLUMNS), ZONE,
                                 WINDOW)  # fmt: skip
        assert report.imported == 1, report.lines()
        self.confirmed[(self.meters[meter], Decimal(value), "import")] += 1
        self.periods.add(period_of(taken, ZONE, WINDOW))

    @rule(to=st.sampled_from(["minutes", "window_end", "past_midnight", "next_window"]))
    def time_passes(self, to: str) -> None:
        if to == "minutes":
            self.now += timedelta(minutes=7)
        elif to == "window_end":
            self.now = max(self.now, local(self.now, WINDOW[1], time(23, 58)))
        elif to == "past_midnight":
            self.now = max(self.now, local(self.now, WINDOW[1], time(23, 59))) + timedelta(
                minutes=3
            )
        else:
            first_of_next = self.now.astimezone(ZONE).replace(day=1) + timedelta(days=32)
            self.now = local(first_of_next, WINDOW[0], time(10, 0))
        self.periods.add(period_of(self.now, ZONE, WINDOW))

    # --- what must always hold ---

    @invariant()
    def one_current_reading_per_meter_and_period_and_it_is_the_latest(self) -> None:
        with Session(self.engine) as session:
            rows = session.execute(
                select(Reading.meter_id, Reading.period, Reading.taken_at, Reading.replaced_by_id)
                .where(Reading.status == "accepted")
            ).all()  # fmt: skip
        current: Counter[tuple[int, str]] = Counter()
        latest: dict[tuple[int, str], datetime] = {}
        for meter_id, period, taken_at, replaced_by in rows:
            key = (meter_id, period)
            latest[key] = max(latest.get(key, taken_at), taken_at)
            current[key] += replaced_by is None
        for meter_id, period, taken_at, replaced_by in rows:
            if replaced_by is None:
                assert taken_at == latest[(meter_id, period)], (meter_id, period)
        assert all(n <= 1 for n in current.values()), current
        assert set(current) == set(latest)  # a period with accepted readings has a current one

    @invariant()
    def the_export_is_the_set_of_current_readings(self) -> None:
        with Session(self.engine) as session:
            for period in sorted(self.periods):
                exported = {(r.meter_serial, r.value) for r in billed_readings(session, period)}
                current = session.execute(
                    select(Reading.meter_id, Reading.value).where(
                        Reading.period == period,
                        Reading.status == "accepted",
                        Reading.replaced_by_id.is_(None),
                    )
                ).all()
                serials = {mid: f"A{i + 1}" for i, mid in enumerate(self.meters)}
                assert exported == {(serials[m], v) for m, v in current}, period

    @invariant()
    def no_confirmed_reading_is_lost_or_stored_twice(self) -> None:
        assert self._stored() == +self.confirmed

    @invariant()
    def a_calls_readings_count_for_the_period_it_was_let_in_for(self) -> None:
        with Session(self.engine) as session:
            rows = session.execute(
                select(Call.call_sid, Reading.period)
                .join(Reading, Reading.call_id == Call.id)
                .where(Reading.source == "ivr")
            ).all()
        for sid, period in rows:
            assert period == self.admitted[sid], sid


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    """Many calls in an hour of the machine's clock: no rate limit in the way."""
    return {**app_config, "METERLINE_CALLS_PER_HOUR": "10000"}


@pytest.fixture
def machine(app: Flask, clean_db: Engine) -> Iterator[type[Ledger]]:
    Ledger.app, Ledger.engine = app, clean_db
    yield Ledger


def test_the_ledger_keeps_its_invariants_under_any_interleaving(machine: type[Ledger]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )

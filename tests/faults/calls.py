"""Many signed calls at once against a real server, and what the database holds afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ivr.simulator.phone import CallError, SimulatedCall, scripted
from storage.models import Call, CallReply, Meter, Phone, Reading
from tests.conftest import TEST_TOKEN
from tests.support.data import add_account, add_meter
from tests.support.server import Server, running_server

STORED = "Принято."  # said after each confirmed reading
APOLOGY = "техническая ошибка"
KEYS = "112# 1 113# 1"  # hot water, then cold water: value and confirmation each


def serving(
    database_url: str, log: Path, workers: int = 2, extra: dict[str, str] | None = None
) -> AbstractContextManager[Server]:
    """`meterline serve` logging to `log`, which fault tests read for tracebacks."""
    return running_server(database_url, extra=extra, workers=workers, log_path=log)


def caller_number(n: int) -> str:
    """The n-th test caller (a valid Russian mobile number)."""
    return f"+7921{n:07d}"


def seed_accounts(engine: Engine, count: int) -> None:
    """`count` accounts, each bound to its own number, with a hot and a cold water meter."""
    with Session(engine) as session:
        for n in range(count):
            account = add_account(session, number=f"{7000000 + n}", phones=(caller_number(n),))
            add_meter(session, account, serial=f"HW{n:06d}", kind="hot_water")
            add_meter(session, account, serial=f"CW{n:06d}", kind="cold_water")
        session.commit()


@dataclass
class Outcome:
    """One call as the caller lived it."""

    caller: str
    started: float
    confirmed: int = 0  # "reading accepted" heard: each of these must be stored
    apologised: bool = False
    error: str = ""

    @property
    def completed(self) -> bool:
        """Every meter confirmed, no error, no apology."""
        return self.confirmed == 2 and not self.error and not self.apologised


def place_calls(
    base_url: str,
    count: int,
    pause: float = 0.05,
    ramp: float = 3.0,
    at_once: int = 20,
    on_tick: Callable[[float], None] | None = None,
) -> list[Outcome]:
    """`count` calls from callers 0..count-1, starting evenly over `ramp` seconds.

    `on_tick(seconds since start)` runs in the main thread every 50 ms while calls run: the
    test's hook to kill a worker or cut the database at a chosen moment.
    """
    start = time.monotonic()
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def call(n: int) -> None:
        time.sleep(max(0.0, start + ramp * n / count - time.monotonic()))
        outcome = Outcome(caller=caller_number(n), started=time.monotonic() - start)
        with requests.Session() as http:
            phone = SimulatedCall(
                base_url=base_url, token=TEST_TOKEN, caller=outcome.caller, session=http,
                pause=pause,
            )  # fmt: skip
            try:
                phone.run(scripted(KEYS))
            except (CallError, OSError) as exc:
                outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.confirmed = sum(STORED in text for text in phone.transcript.heard)
        outcome.apologised = phone.transcript.said(APOLOGY)
        with lock:
            outcomes.append(outcome)

    with ThreadPoolExecutor(max_workers=at_once) as pool:
        futures = [pool.submit(call, n) for n in range(count)]
        while not all(f.done() for f in futures):
            if on_tick is not None:
                on_tick(time.monotonic() - start)
            time.sleep(0.05)
        for future in futures:
            future.result()
    return outcomes


def stored_per_caller(engine: Engine) -> dict[str, int]:
    """How many readings the line stored for each caller's account."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Phone.e164, func.count(Reading.id))
            .join(Meter, Meter.account_id == Phone.account_id)
            .join(Reading, Reading.meter_id == Meter.id)
            .where(Reading.source == "ivr")
            .group_by(Phone.e164)
        )
        return {phone: int(n) for phone, n in rows}


def doubled_meters(engine: Engine) -> int:
    """Meters with more than one reading stored by the line this period."""
    with engine.connect() as conn:
        doubled = (
            select(Reading.meter_id)
            .where(Reading.source == "ivr")
            .group_by(Reading.meter_id, Reading.period)
            .having(func.count() > 1)
            .subquery()
        )
        return int(conn.scalar(select(func.count()).select_from(doubled)) or 0)


def calls_with_gaps(engine: Engine) -> list[str]:
    """Calls whose stored replies are not exactly steps 0..seq-1 (a half-written step)."""
    with engine.connect() as conn:
        calls = conn.execute(select(Call.id, Call.call_sid, Call.seq)).all()
        replies: dict[int, set[int]] = {}
        for call_id, seq in conn.execute(select(CallReply.call_id, CallReply.seq)):
            replies.setdefault(call_id, set()).add(seq)
    return [sid for call_id, sid, seq in calls if replies.get(call_id, set()) != set(range(seq))]

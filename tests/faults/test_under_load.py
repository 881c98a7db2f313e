"""Faults under load against a real `meterline serve` (gunicorn): long, run with --run-slow.

A worker killed with SIGKILL, PostgreSQL cut and restored (through a TCP proxy) while calls
are in progress. In both, every reading a caller heard accepted is stored, none twice.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.faults.calls import (
    Outcome,
    calls_with_gaps,
    doubled_meters,
    place_calls,
    seed_accounts,
    serving,
    stored_per_caller,
)
from tests.faults.proxy import cuttable

pytestmark = pytest.mark.slow
CALLS = 60


def workers_of(master: int) -> list[int]:
    """The gunicorn master's child processes (its workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == master:
                children.append(int(entry.name))
    return children


def assert_nothing_confirmed_lost(outcomes: list[Outcome], engine: Engine) -> None:
    """Every 'reading accepted' a caller heard is in the database; no meter has two."""
    stored = stored_per_caller(engine)
    lost = [o.caller for o in outcomes if stored.get(o.caller, 0) < o.confirmed]
    assert lost == [], f"confirmed but not stored: {lost}"
    assert doubled_meters(engine) == 0
    assert calls_with_gaps(engine) == []


def test_a_worker_killed_mid_load_loses_no_confirmed_reading(
    database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    seed_accounts(clean_db, CALLS)
    killed: list[int] = []
    with serving(database_url, tmp_path / "serve.log", workers=3) as server:
        master = server.process.pid

        def kill_one(elapsed: float) -> None:
            if elapsed >= 1.0 and not killed:
                victim = workers_of(master)[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        outcomes = place_calls(
            server.url, CALLS, pause=0.02, ramp=4.0, at_once=30, on_tick=kill_one
        )
        assert server.process.poll() is None  # the master lives on
        time.sleep(0.5)
        assert killed and killed[0] not in workers_of(master)
        assert len(workers_of(master)) == 3  # and replaced the worker
    assert_nothing_confirmed_lost(outcomes, clean_db)
    # Only requests the dead worker held could fail; calls placed a second later all went through.
    late = [o for o in outcomes if o.started >= 2.0]
    assert late and all(o.completed for o in late), [o for o in late if not o.completed]
    assert sum(o.completed for o in outcomes) >= CALLS * 2 // 3


def test_postgresql_restarted_mid_load_gets_apologies_then_resumes(
    database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set METERLINE_TEST_DATABASE_URL")
    seed_accounts(clean_db, CALLS)
    with cuttable(database_url) as proxy:
        state = {"cut": False, "restored": False}

        def restart(elapsed: float) -> None:
            if elapsed >= 1.0 and not state["cut"]:
                proxy.cut()
                state["cut"] = True
            elif elapsed >= 2.5 and not state["restored"]:
                proxy.restore()
                state["restored"] = True

        with serving(proxy.url_for(database_url), tmp_path / "serve.log") as server:
            outcomes = place_calls(server.url, CALLS, ramp=4.0, on_tick=restart)
    assert [o.error for o in outcomes if o.error] == []  # never an HTTP error, never bad TwiML
    assert any(o.apologised for o in outcomes)  # the outage did hit calls in progress
    assert_nothing_confirmed_lost(outcomes, clean_db)
    late = [o for o in outcomes if o.started >= 3.0]
    assert late and all(o.completed for o in late), [o for o in late if not o.completed]

"""Operator pages with 100 000 readings: load a scratch database in bulk, time each page.

    python bench/operator_pages.py [--readings 100000] [--runs 5]

SQLite in a temporary directory always; PostgreSQL too when METERLINE_BENCH_DATABASE_URL is
set (that database is EMPTIED first: give it a scratch one).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, insert, select  # noqa: E402

from ivr import create_app  # noqa: E402
from ivr.operator.operators import add_operator  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Account, Base, Call, CallEvent, Flag, Meter, Phone, Reading  # noqa: E402

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
REASONS = ["anomalous", "below_previous", "dropped_call", "low_confidence", "unknown_caller"]
PASSWORD = "bench-password"


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def load(engine: Engine, readings: int) -> dict[str, Any]:
    """Bulk-insert accounts, meters, `readings` readings, calls, events and flags."""
    rnd = random.Random(7)
    per_meter, meters_n = 10, readings // 10
    accounts_n = meters_n // 2
    with engine.begin() as conn:
        conn.execute(
            insert(Account),
            [
                {
                    "id": i + 1,
                    "number": f"{1000000 + i}",
                    "address": f"ул. Мира, {i}",
                    "supplier": f"Поставщик {i % 4}",
                    "created_at": NOW,
                }
                for i in range(accounts_n)
            ],
        )
        conn.execute(
            insert(Phone),
            [{"account_id": i + 1, "e164": f"+7921{1000000 + i:07d}"} for i in range(accounts_n)],
        )
        conn.execute(
            insert(Meter),
            [
                {
                    "id": m + 1,
                    "account_id": m // 2 + 1,
                    "serial": f"M{m:07d}",
                    "kind": "hot_water" if m % 2 == 0 else "heat",
                    "unit": "м³" if m % 2 == 0 else "Гкал",
                    "integer_digits": 5,
                    "decimal_digits": 3,
                    "supplier": f"Поставщик {m // 2 % 4}",
                    "location": "",
                    "active": True,
                }
                for m in range(meters_n)
            ],
        )
        rows = []
        for m in range(meters_n):
            value = Decimal(rnd.randint(10, 900))
            for k in range(per_meter, 0, -1):
                taken = NOW - timedelta(days=30.44 * k)
                value += Decimal(rnd.randint(1, 5))
                rows.append(
                    {
                        "meter_id": m + 1,
                        "value": value,
                        "taken_at": taken,
                        "period": taken.strftime("%Y-%m"),
                        "source": "ivr",
                        "status": "accepted",
                        "input_mode": rnd.choice(["keypad", "speech"]),
                        "created_at": taken,
                    }
                )
        for start in range(0, len(rows), 10000):
            conn.execute(insert(Reading), rows[start : start + 10000])
        calls = accounts_n * 2
        conn.execute(
            insert(Call),
            [
                {
                    "id": c + 1,
                    "call_sid": f"CA{c:032d}",
                    "caller": f"+7921{1000000 + c // 2:07d}",
                    "account_id": c // 2 + 1,
                    "state": '{"step": "done"}',
                    "seq": 4,
                    "started_at": NOW - timedelta(minutes=c),
                    "ended_at": NOW - timedelta(minutes=c) + timedelta(seconds=60 + c % 90),
                    "outcome": "completed",
                    "input_modes": rnd.choice(["keypad", "speech"]),
                }
                for c in range(calls)
            ],
        )
        events = []
        for c in range(calls):
            for seq, kind in enumerate(["prompt", "input", "understood", "decision"]):
                events.append(
                    {
                        "call_id": c + 1,
                        "seq": seq,
                        "kind": kind,
                        "text": f"{kind} {c}",
                        "at": NOW - timedelta(minutes=c) + timedelta(seconds=seq * 10),
                    }
                )
        for start in range(0, len(events), 10000):
            conn.execute(insert(CallEvent), events[start : start + 10000])
        flagged = []
        for f in range(max(1, calls // 4)):
            meter = 2 * (f % accounts_n) + 1
            flagged.append(
                {
                    "meter_id": meter,
                    "value": Decimal(99999),
                    "taken_at": NOW,
                    "period": "2026-11",
                    "source": "ivr",
                    "status": "flagged",
                    "call_id": 2 * (f % accounts_n) + 1,
                    "created_at": NOW,
                }
            )
        conn.execute(insert(Reading), flagged)
        ids = list(conn.scalars(select(Reading.id).where(Reading.status == "flagged")))
        conn.execute(
            insert(Flag),
            [
                {
                    "reason": REASONS[i % len(REASONS)],
                    "detail": "",
                    "call_id": 2 * (i % accounts_n) + 1,
                    "reading_id": rid,
                    "meter_id": 2 * (i % accounts_n) + 1,
                    "account_id": i % accounts_n + 1,
                    "status": "open" if i % 3 else "resolved",
                    "created_at": NOW - timedelta(minutes=i),
                    "note": "",
                }
                for i, rid in enumerate(ids)
            ],
        )
    return {
        "accounts": accounts_n,
        "meters": meters_n,
        "readings": len(rows) + len(flagged),
        "calls": calls,
        "events": len(events),
        "flags": len(flagged),
    }


def time_pages(url: str, runs: int) -> list[tuple[str, float, float]]:
    """(page, median ms, max ms) over `runs` requests after one warm-up."""
    app = create_app(
        {
            "METERLINE_DATABASE_URL": url,
            "METERLINE_SECRET_KEY": "bench",
            "METERLINE_PUBLIC_URL": "http://127.0.0.1:5000",
        }
    )
    svc = app.extensions["meterline"]
    svc.clock = lambda: NOW
    with svc.sessions() as session:
        add_operator(session, "bench", PASSWORD, True, None, NOW)
    client = app.test_client()
    page = client.get("/operator/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
    client.post(
        "/operator/sign-in", data={"login": "bench", "password": PASSWORD, "csrf_token": token}
    )
    pages = {
        "queue": "/operator/",
        "queue, reason filter": "/operator/?reason=dropped_call",
        "queue, page 20": "/operator/?page=20",
        "queue, all statuses, supplier": "/operator/?status=all&supplier=Поставщик+1",
        "queue, phone search": "/operator/?q=8+921+100-00-05",
        "queue, date range": "/operator/?from=2026-11-20&to=2026-11-24",
        "call page": "/operator/calls/1",
        "account page": "/operator/accounts/1000000",
        "dashboard": "/operator/dashboard",
    }
    results = []
    for name, path in pages.items():
        assert client.get(path).status_code == 200, path
        spent = []
        for _ in range(runs):
            start = time.perf_counter()
            response = client.get(path)
            spent.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200
        results.append((name, statistics.median(spent), max(spent)))
    svc.engine.dispose()
    return results


def run(url: str, readings: int, runs: int) -> None:
    """Migrate, empty, load and time one database."""
    upgrade(url)
    engine = make_engine(url)
    _empty(engine)
    start = time.perf_counter()
    counts = load(engine, readings)
    loaded = time.perf_counter() - start
    engine.dispose()
    print(f"\n{url.split('://')[0]}: loaded {counts} in {loaded:.1f} s")
    for name, median, worst in time_pages(url, runs):
        print(f"  {name:32} median {median:7.1f} ms   max {worst:7.1f} ms")


def main() -> None:
    """Time the operator pages on SQLite, and on PostgreSQL if given."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{tmp}/bench.db", args.readings, args.runs)
    pg = os.environ.get("METERLINE_BENCH_DATABASE_URL")
    if pg:
        run(pg, args.readings, args.runs)


if __name__ == "__main__":
    main()

"""The incoming webhook's one round trip of reads (storage.incoming), on SQLite and PostgreSQL:
the directory it prefetches for the caller's number answers exactly as SqlDirectory does on
the same data, and the replay check and the hourly counter read what the database holds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ivr.voice.directory import PrefetchedDirectory, SqlDirectory
from storage import incoming
from storage.incoming import IncomingStore
from storage.ledger import HISTORY_LIMIT
from storage.models import Account, Call, Counter, Meter, Phone, Reading
from storage.steps import StepStore

ZONE = ZoneInfo("Europe/Moscow")
WINDOW = (23, 25)
NOW = datetime(2026, 11, 24, 7, 0, 0, 123456, tzinfo=UTC)
PERIOD = "2026-11"
SHARED = "+79210000001"  # three accounts
SINGLE = "+79210000002"  # one of them
UNKNOWN = "+79210000009"
HOUR = timedelta(hours=1)


def _months_back(n: int) -> str:
    index = 2026 * 12 + 10 - n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _reading(meter: Meter, value: str, taken_at: datetime, period: str,
             status: str = "accepted") -> Reading:  # fmt: skip
    return Reading(meter_id=meter.id, value=Decimal(value), taken_at=taken_at, period=period,
                   source="import", status=status, created_at=NOW)  # fmt: skip


def _seed(clean_db: Engine) -> None:
    """Several accounts on one number (created out of number order), meters of every kind
    with long, short and no history, an inactive one, readings replaced, flagged, rejected,
    a current reading of the period and one of a later period; another account's meter."""
    with Session(clean_db) as s:
        accounts = [Account(number=n, address=f"ул. Мира, {n}", supplier="ВТС")
                    for n in ("3003", "1001", "2002", "4004")]  # fmt: skip
        s.add_all(accounts)
        s.flush()
        late, early, mid, other = accounts
        s.add_all([Phone(account_id=a.id, e164=SHARED) for a in (late, early, mid)])
        s.add_all(
            [
                Phone(account_id=mid.id, e164=SINGLE),
                Phone(account_id=other.id, e164=UNKNOWN[:-1] + "8"),
            ]
        )

        def meter(account: Account, serial: str, kind: str, location: str = "кухня",
                  **extra: object) -> Meter:  # fmt: skip
            m = Meter(account_id=account.id, serial=serial, kind=kind, location=location,
                      unit="Гкал" if kind == "heat" else "м3", **extra)  # fmt: skip
            s.add(m)
            s.flush()
            return m

        long = meter(mid, "H-1", "hot_water", verification_due=date(2029, 3, 1))
        # 30 months of history: only the newest HISTORY_LIMIT count, oldest first.
        for n in range(30, 0, -1):
            s.add(_reading(long, f"{100 + 3 * (30 - n)}.5000", NOW - timedelta(days=30 * n),
                           _months_back(n)))  # fmt: skip
        cold = meter(mid, "C-1", "cold_water", location="ванная")  # no history at all
        meter(mid, "C-0", "cold_water", location="ванная", active=False)
        heat = meter(late, "T-1", "heat", integer_digits=4, decimal_digits=2)
        # One month: an accepted reading replaced by a later one, a flagged and a rejected.
        second = _reading(heat, "10.75", NOW - timedelta(days=61), _months_back(2))
        s.add(second)
        s.flush()
        first = _reading(heat, "10.25", NOW - timedelta(days=62), _months_back(2))
        first.replaced_by_id = second.id
        s.add(first)
        s.add(_reading(heat, "99", NOW - timedelta(days=60), _months_back(2), "flagged"))
        s.add(_reading(heat, "98", NOW - timedelta(days=59), _months_back(1), "rejected"))
        # Two readings taken at the same moment in two periods: ordered by id too.
        s.add(_reading(heat, "11", NOW - timedelta(days=31), _months_back(1)))
        s.add(_reading(heat, "11.5", NOW - timedelta(days=31), _months_back(3)))
        # The period's current reading, one replaced before it, and a later period's.
        now_reading = _reading(heat, "12.5", NOW - timedelta(hours=1), PERIOD)
        s.add(now_reading)
        s.flush()
        old_now = _reading(heat, "12", NOW - timedelta(hours=3), PERIOD)
        old_now.replaced_by_id = now_reading.id
        s.add(old_now)
        s.add(_reading(heat, "13", NOW + timedelta(days=20), "2026-12"))
        s.add(_reading(cold, "5", NOW - timedelta(minutes=5), PERIOD, "flagged"))
        meter(mid, "H-0", "hot_water", location="ванная")  # sorted before H-1 by location
        theirs = meter(other, "X-1", "hot_water")
        s.add(_reading(theirs, "1", NOW - timedelta(days=30), _months_back(1)))
        s.commit()


def _sql(conn: object, e164: str, period: str) -> list[object]:
    return SqlDirectory(conn, ZONE, WINDOW).accounts_for_phone(e164, period)  # type: ignore[arg-type]


def _prefetched(webhooks: Engine, conn: Connection, e164: str, period: str) -> PrefetchedDirectory:
    """The directory "a call comes in" answers from: its rows read for `e164` and `period`."""
    store = IncomingStore(webhooks, StepStore(webhooks))
    found = store.read(conn, "CA-new", ("calls:test", 100), NOW, HOUR, (e164, period))
    assert found.phone is not None
    return PrefetchedDirectory(conn, ZONE, WINDOW, 30, found.phone)


@pytest.mark.parametrize("e164", [SHARED, SINGLE, UNKNOWN])
@pytest.mark.parametrize("period", [PERIOD, "2026-12", _months_back(2)])
def test_the_prefetched_directory_answers_as_the_sql_one(
    webhooks: Engine, clean_db: Engine, e164: str, period: str
) -> None:
    _seed(clean_db)
    with webhooks.connect() as conn:
        prefetched = _prefetched(webhooks, conn, e164, period)
        expected = _sql(conn, e164, period)
        got = prefetched.accounts_for_phone(e164, period)
    with Session(clean_db) as session:  # the ORM's paths ask on a Session: the same answer
        assert _sql(session, e164, period) == expected
    assert got == expected
    assert repr(got) == repr(expected)  # the same types too (exact decimals, UTC datetimes)
    if e164 == SHARED:
        assert [a.number for a in got] == ["1001", "2002", "3003"]
        meters = {m.serial: m for a in got for m in a.meters}
        assert [m.serial for m in got[1].meters] == ["H-0", "H-1", "C-0", "C-1"]
        assert not meters["C-0"].active and meters["C-1"].history == ()
        if period == PERIOD:
            assert len(meters["H-1"].history) == HISTORY_LIMIT
            assert meters["T-1"].current_period_value == Decimal("12.5")
            history = [r.value for r in meters["T-1"].history]
            assert history == [Decimal("10.75"), Decimal("11"), Decimal("11.5")]


def test_asked_anything_else_the_prefetched_directory_asks_the_database(
    webhooks: Engine, clean_db: Engine
) -> None:
    _seed(clean_db)
    with webhooks.connect() as conn:
        prefetched = _prefetched(webhooks, conn, SINGLE, PERIOD)
        for e164, period in [(SHARED, PERIOD), (SINGLE, "2026-12")]:
            assert prefetched.accounts_for_phone(e164, period) == _sql(conn, e164, period)
        by_number = prefetched.account_by_number("2002", PERIOD)
        assert by_number is not None and by_number.number == "2002"


def test_the_reads_find_a_retried_call_and_count_within_the_limit(
    webhooks: Engine, clean_db: Engine
) -> None:
    with Session(clean_db) as session:
        session.add(Call(call_sid="CA-old", caller=SINGLE, started_at=NOW, seq=1, state="{}"))
        session.commit()
    store = IncomingStore(webhooks, StepStore(webhooks))
    bucket = ("calls:" + SINGLE, 2)
    with webhooks.connect() as conn:
        retried = store.read(conn, "CA-old", bucket, NOW, HOUR, None)
        assert retried.call is not None and retried.call.call_sid == "CA-old"
        assert retried.counted and retried.phone is None
        store.give_back(conn, bucket[0])  # a retry is no new call
        fresh = [store.read(conn, f"CA-{n}", bucket, NOW, HOUR, (SINGLE, PERIOD)) for n in range(3)]
    assert [(f.call, f.counted) for f in fresh] == [(None, True), (None, True), (None, False)]
    assert all(f.phone is not None and f.phone.accounts == [] for f in fresh)


@pytest.mark.parametrize("fails", ["statement", "conversion"])
def test_reads_that_fail_after_the_count_leave_nothing_counted(
    webhooks: Engine, clean_db: Engine, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """PostgreSQL: the pipeline is one implicit transaction; SQLite: the count is given back."""
    _seed(clean_db)
    store = IncomingStore(webhooks, StepStore(webhooks))
    if fails == "statement":
        # A statement the database refuses (the same parameters: the driver sends it).
        bad = "SELECT {m} AS a, {m} AS b, {m} AS c FROM nowhere"
        monkeypatch.setattr(incoming, "_history_sql", lambda m: bad.format(m=m))
        pg_bad = "SELECT %s AS a, %s AS b, %s AS c, %s AS d FROM nowhere"
        monkeypatch.setattr(incoming, "_pg_readings_sql", lambda: pg_bad)
    else:

        def broken(row: tuple[object, ...]) -> tuple[object, ...]:
            raise ValueError("a value the column type cannot read")

        monkeypatch.setattr(store, "_readings_cast", broken)
    with webhooks.connect() as conn, pytest.raises((DBAPIError, ValueError)):
        store.read(conn, "CA-new", ("calls:test", 5), NOW, HOUR, (SHARED, PERIOD))
    with Session(clean_db) as session:
        row = session.get(Counter, "calls:test")
        assert row is None or row.count == 0


def test_on_postgresql_the_count_commits_without_waiting_for_the_disk_and_only_the_count(
    webhooks: Engine, clean_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reads' transaction (the hourly count) runs with synchronous_commit off; the setting
    ends with it, so the step's own write, on the same connection, waits for its flush."""
    if webhooks.dialect.name != "postgresql":
        pytest.skip("asynchronous commit is PostgreSQL's")
    _seed(clean_db)
    # The readings read, replaced by one that reports the setting in the transaction, as a
    # reading row of another period (it lands in the history, converted like any other).
    seen = ("SELECT 1, 1, 1.5::numeric, now(), current_setting('synchronous_commit'), "
            "'accepted', 'ivr', NULL::int WHERE %s::text IS NOT NULL AND %s::text IS NOT NULL "
            "AND %s::int IS NOT NULL AND %s::text IS NOT NULL")  # fmt: skip
    monkeypatch.setattr(incoming, "_pg_readings_sql", lambda: seen)
    store = IncomingStore(webhooks, StepStore(webhooks))
    with webhooks.connect() as conn:
        found = store.read(conn, "CA-new", ("calls:test", 5), NOW, HOUR, (SINGLE, PERIOD))
        assert found.counted and found.phone is not None
        assert [row[4] for row in found.phone.history] == ["off"]
        after = conn.exec_driver_sql("SELECT current_setting('synchronous_commit')").scalar()
        assert after == "on"
    with Session(clean_db) as session:
        row = session.get(Counter, "calls:test")
        assert row is not None and row.count == 1  # committed

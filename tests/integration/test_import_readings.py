"""`meterline import readings` on the real database: history, rejections, no duplicates."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ivr.billing import readings_import
from storage.imported_readings import HistoryReading, insert_history
from storage.models import Meter, Reading

METERS = """\
account,phones,address,supplier,meter_serial,meter_kind,unit,\
integer_digits,decimal_digits,verification_due,location
1001,597904,ул. Ленина 1,ВТС,HW-1,hot_water,,5,3,,кухня
1001,597904,ул. Ленина 1,ВТС,HT-1,heat,,3,2,,
"""


def run(app: Flask, tmp_path: Path, command: str, body: str | bytes) -> Result:
    path = tmp_path / f"{command}.csv"
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8")
    else:
        path.write_bytes(body)
    return app.test_cli_runner().invoke(args=["import", command, str(path)])


def rejected(result: Result) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"^line (\d+): (.*)$", result.stderr, re.M)}


def history(engine: Engine) -> list[tuple[str, datetime, Decimal, str, str, str]]:
    with Session(engine) as db:
        rows = db.execute(
            select(Meter.serial, Reading.taken_at, Reading.value, Reading.period,
                   Reading.source, Reading.status)
            .join(Meter, Reading.meter_id == Meter.id)
            .order_by(Meter.serial, Reading.taken_at)
        ).all()  # fmt: skip
    return [tuple(row) for row in rows]  # type: ignore[misc]


@pytest.fixture
def meters(app: Flask, tmp_path: Path) -> None:
    result = run(app, tmp_path, "meters", METERS)
    assert result.exit_code == 0, result.output


@pytest.mark.usefixtures("meters")
def test_it_stores_history_as_accepted_imported_readings(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    body = (
        "meter_serial;taken_at;value\n"
        "HW-1;2026-01-23;123,456\n"
        "HW-1;23.02.2026 10:30;124.5\n"
        "HT-1;2026-02-28T23:30:00+00:00;1.25\n"
    )
    result = run(app, tmp_path, "readings", body)
    assert result.exit_code == 0, result.output
    assert "rows: 3, imported: 3, skipped as duplicates: 0, rejected: 0" in result.stdout
    assert history(engine) == [
        # 23:30 UTC on 28 February is 02:30 on 1 March in Moscow: the March period.
        ("HT-1", datetime(2026, 2, 28, 23, 30, tzinfo=UTC), Decimal("1.25"), "2026-03",
         "import", "accepted"),
        ("HW-1", datetime(2026, 1, 22, 21, 0, tzinfo=UTC), Decimal("123.456"), "2026-01",
         "import", "accepted"),
        ("HW-1", datetime(2026, 2, 23, 7, 30, tzinfo=UTC), Decimal("124.5"), "2026-02",
         "import", "accepted"),
    ]  # fmt: skip


@pytest.mark.usefixtures("meters")
def test_importing_history_twice_stores_it_once(app: Flask, tmp_path: Path, engine: Engine) -> None:
    body = (
        "meter_serial,taken_at,value\nHW-1,2026-01-23,1\nHW-1,2026-01-23,1.000\nHW-1,2026-02-23,2\n"
    )
    first = run(app, tmp_path, "readings", body)
    assert first.exit_code == 0, first.output
    assert "imported: 2, skipped as duplicates: 1" in first.stdout
    stored = history(engine)
    again = run(app, tmp_path, "readings", body)
    assert again.exit_code == 0
    assert "imported: 0, skipped as duplicates: 3" in again.stdout
    assert history(engine) == stored


@pytest.mark.usefixtures("meters")
@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("XX-9,2026-01-23,1", "unknown meter serial 'XX-9'"),
        ("HW-1,2026-13-01,1", "taken_at '2026-13-01' is not a real date or time"),
        ("HW-1,yesterday,1", "taken_at 'yesterday' is not a date or time"),
        ("HW-1,2099-01-01,1", "taken_at '2099-01-01' is in the future"),
        ("HW-1,2026-01-23,-5", "value '-5' is negative"),
        ("HW-1,2026-01-23,abc", "value 'abc' is not a number"),
        ("HW-1,2026-01-23,123456", "value 123456 has 6 integer digits, the register has 5"),
        ("HT-1,2026-01-23,1.255", "value 1.255 has 3 decimals, the register has 2"),
        ("HW-1,2026-01-23", "expected 3 fields, found 2"),
        ("HW-1,2026-01-10,7", "line 2 gives value 5 for the same meter and time"),
    ],
)
def test_a_bad_reading_is_rejected_with_its_line(
    app: Flask, tmp_path: Path, engine: Engine, row: str, reason: str
) -> None:
    body = f"meter_serial,taken_at,value\nHW-1,2026-01-10,5\n{row}\n"
    result = run(app, tmp_path, "readings", body)
    assert result.exit_code == 1
    assert reason in rejected(result)[3], result.stderr
    assert [r[2] for r in history(engine)] == [Decimal(5)]


@pytest.mark.usefixtures("meters")
def test_another_value_for_an_imported_moment_is_rejected_not_overwritten(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    assert run(app, tmp_path, "readings", "meter_serial,taken_at,value\nHW-1,2026-01-23,1\n")
    result = run(app, tmp_path, "readings", "meter_serial,taken_at,value\nHW-1,2026-01-23,2\n")
    assert result.exit_code == 1
    assert "already has value 1 imported" in rejected(result)[2]
    assert [r[2] for r in history(engine)] == [Decimal(1)]


@pytest.mark.usefixtures("meters")
def test_a_wrong_header_names_the_missing_column(app: Flask, tmp_path: Path) -> None:
    result = run(app, tmp_path, "readings", "meter_serial;value\nHW-1;1\n")
    assert result.exit_code == 2
    assert "missing columns: taken_at" in result.stderr


@pytest.mark.usefixtures("meters")
def test_windows_1251_history_is_read_with_a_note(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    body = "meter_serial;taken_at;value\r\nHW-1;23.01.2026;12,5\r\nНЕТ-1;23.01.2026;1\r\n"
    result = run(app, tmp_path, "readings", body.encode("cp1251"))
    assert result.exit_code == 1
    assert "read as Windows-1251" in result.stderr
    assert rejected(result) == {3: "unknown meter serial 'НЕТ-1' (import it with the meters first)"}
    assert [r[2] for r in history(engine)] == [Decimal("12.5")]


@pytest.mark.usefixtures("meters")
def test_readings_stored_meanwhile_by_another_import_count_as_duplicates(
    app: Flask, tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-up missed them (a concurrent import committed after it): the insert hits the
    unique key, each row is retried under a savepoint and classified again."""
    first = "meter_serial,taken_at,value\nHW-1,2026-01-23,1\nHW-1,2026-02-23,2\n"
    assert run(app, tmp_path, "readings", first).exit_code == 0
    real = readings_import.imported_values
    calls = []

    def blind_first(session: Session, keys: list[str]) -> dict[str, Decimal]:
        calls.append(1)
        return {} if len(calls) == 1 else real(session, keys)

    monkeypatch.setattr(readings_import, "imported_values", blind_first)
    body = first + "HW-1,2026-03-23,3\nHT-1,2026-01-23,9\n"
    # Another import meanwhile stored HT-1 with a different value.
    with Session(engine) as db:
        ht = db.scalars(select(Meter.id).where(Meter.serial == "HT-1")).one()
        when = datetime(2026, 1, 22, 21, 0, tzinfo=UTC)
        insert_history(db, [HistoryReading.of(ht, when, Decimal(8), "2026-01")])
        db.commit()
    result = run(app, tmp_path, "readings", body)
    assert result.exit_code == 1, result.output
    assert "imported: 1, skipped as duplicates: 2, rejected: 1" in result.stdout
    assert "already has value 8 imported" in rejected(result)[5]
    assert [r[2] for r in history(engine)] == [Decimal(8), Decimal(1), Decimal(2), Decimal(3)]

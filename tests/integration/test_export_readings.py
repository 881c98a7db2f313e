"""`meterline export readings` on the real database: contents, filters, format."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage import ledger
from storage.ledger import NewReading
from storage.models import Account, Call, Meter, Reading

HEADER = ["account", "meter_serial", "meter_kind", "value", "taken_at", "source", "call_sid"]


def meter(db: Session, account: Account, serial: str, kind: str, supplier: str = "") -> Meter:
    m = Meter(account=account, serial=serial, kind=kind, unit="м3", supplier=supplier)
    db.add(m)
    return m


def reading(db: Session, m: Meter, value: str, when: datetime, **extra: object) -> Reading:
    r = Reading(
        meter=m, value=Decimal(value), taken_at=when, period=extra.pop("period", "2026-03"),
        source=extra.pop("source", "ivr"), status=extra.pop("status", "accepted"), **extra,
    )  # fmt: skip
    db.add(r)
    db.flush()
    return r


@pytest.fixture
def stored(app: Flask, engine: Engine) -> None:
    """Two accounts, three meters, readings of every kind of status around March 2026."""
    with Session(engine) as db:
        a1 = Account(number="1001", address="ул. Ленина 1", supplier="ВТС")
        a2 = Account(number="1002", address="ул. Мира 2", supplier="Водоканал")
        db.add_all([a1, a2])
        hw = meter(db, a1, "HW-1", "hot_water")
        ht = meter(db, a1, "HT-1", "heat", supplier="Теплосеть")
        cw = meter(db, a2, "CW-2", "cold_water")
        call = Call(call_sid="CA" + "1" * 32, caller="+78172597904")
        db.add(call)
        db.flush()
        march = datetime(2026, 3, 23, 7, 15, tzinfo=UTC)
        db.flush()
        for value, when in (("100.5", march), ("101.25", march.replace(hour=8))):
            # Through the ledger: the later reading replaces the earlier one.
            ledger.store(
                db, NewReading(hw.id, Decimal(value), when, "2026-03", "ivr", call_id=call.id)
            )
        reading(db, ht, "12.000", march, source="operator")
        reading(db, cw, "7", march.replace(day=24), source="import")
        reading(db, cw, "9999", march, status="flagged")
        reading(db, cw, "1", march, status="rejected")
        reading(db, cw, "5", march.replace(month=2), period="2026-02")
        db.commit()


def export(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["export", "readings", *args])


def table(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


@pytest.mark.usefixtures("stored")
def test_it_exports_the_accepted_current_readings_of_the_period(app: Flask) -> None:
    result = export(app, "--period", "2026-03")
    assert result.exit_code == 0, result.output
    assert table(result.stdout) == [
        HEADER,
        ["1001", "HT-1", "heat", "12", "2026-03-23T10:15:00+03:00", "operator", ""],
        [
            "1001",
            "HW-1",
            "hot_water",
            "101.25",
            "2026-03-23T11:15:00+03:00",
            "ivr",
            "CA" + "1" * 32,
        ],
        ["1002", "CW-2", "cold_water", "7", "2026-03-24T10:15:00+03:00", "import", ""],
    ]
    assert "exported 3 readings of 2026-03 to stdout" in result.stderr


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("supplier", "serials"),
    [("ВТС", ["HW-1"]), ("Теплосеть", ["HT-1"]), ("Водоканал", ["CW-2"]), ("Нет такого", [])],
)
def test_the_supplier_is_the_meters_or_else_the_accounts(
    app: Flask, supplier: str, serials: list[str]
) -> None:
    result = export(app, "--period", "2026-03", "--supplier", supplier)
    assert result.exit_code == 0
    rows = table(result.stdout)
    assert rows[0] == HEADER
    assert [row[1] for row in rows[1:]] == serials


@pytest.mark.usefixtures("stored")
def test_it_writes_a_file_and_an_excel_flavour(app: Flask, tmp_path: Path) -> None:
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    assert export(app, "--period", "2026-02", "-o", str(plain)).exit_code == 0
    assert table(plain.read_text(encoding="utf-8")) == [
        HEADER, ["1002", "CW-2", "cold_water", "5", "2026-02-23T10:15:00+03:00", "ivr", ""]
    ]  # fmt: skip
    assert export(app, "--period", "2026-02", "-o", str(excel), "--excel").exit_code == 0
    data = excel.read_bytes()
    assert data.startswith("\ufeff".encode())
    assert table(data.decode("utf-8-sig"), ";")[1][0] == "1002"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.usefixtures("stored")
def test_an_empty_period_gives_the_header_only(app: Flask) -> None:
    result = export(app, "--period", "2025-01")
    assert result.exit_code == 0
    assert table(result.stdout) == [HEADER]


@pytest.mark.parametrize("period", ["2026-3", "03.2026", "2026-13", "march", ""])
def test_a_bad_period_is_refused_clearly(app: Flask, period: str) -> None:
    result = export(app, "--period", period)
    assert result.exit_code == 2
    assert "expected YYYY-MM, e.g. 2026-03" in result.stderr


def test_what_was_imported_comes_back_out(app: Flask, tmp_path: Path) -> None:
    meters = tmp_path / "m.csv"
    meters.write_text(
        "account;phones;address;supplier;meter_serial;meter_kind;unit;integer_digits;"
        "decimal_digits;verification_due;location\n1001;597904;a;ВТС;HW-1;ГВС;;5;3;;\n",
        encoding="utf-8",
    )
    readings = tmp_path / "r.csv"
    readings.write_text('meter_serial,taken_at,value\nHW-1,23.03.2026,"00123,450"\n')
    runner = app.test_cli_runner()
    assert runner.invoke(args=["import", "meters", str(meters)]).exit_code == 0
    assert runner.invoke(args=["import", "readings", str(readings)]).exit_code == 0
    result = export(app, "--period", "2026-03")
    assert table(result.stdout)[1:] == [
        ["1001", "HW-1", "hot_water", "123.45", "2026-03-23T00:00:00+03:00", "import", ""]
    ]


def test_an_unwritable_output_is_a_clear_error(app: Flask, tmp_path: Path) -> None:
    result = export(app, "--period", "2026-03", "-o", str(tmp_path / "missing" / "out.csv"))
    assert result.exit_code == 1
    assert "cannot write" in result.stderr and "No such file or directory" in result.stderr

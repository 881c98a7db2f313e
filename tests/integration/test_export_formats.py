"""`meterline export readings` for people: xlsx with typed cells, CSV for Russian Excel."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.models import Account, Meter, Reading

HEADER = ("account", "meter_serial", "meter_kind", "value", "taken_at", "source", "call_sid")


@pytest.fixture
def stored(app: Flask, engine: Engine) -> None:
    """A serial with a leading zero, values that Excel would take for text or a date."""
    with Session(engine) as db:
        account = Account(number="0012345", address="ул. Ленина 1")
        hot = Meter(account=account, serial="0145678", kind="hot_water", unit="м3")
        heat = Meter(account=account, serial="HT-1", kind="heat", unit="Гкал", decimal_digits=2)
        db.add_all([account, hot, heat])
        when = datetime(2026, 3, 23, 7, 15, tzinfo=UTC)
        for meter, value in ((hot, "111.5"), (heat, "16.2")):
            db.add(
                Reading(
                    meter=meter, value=Decimal(value), taken_at=when, period="2026-03",
                    source="ivr", status="accepted",
                )
            )  # fmt: skip
        db.commit()


def export(app: Flask, *args: str) -> None:
    result = app.test_cli_runner().invoke(args=["export", "readings", "--period", "2026-03", *args])
    assert result.exit_code == 0, result.output
    assert "exported 2 readings" in result.stderr


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("args", [["--format", "xlsx"], []])
def test_xlsx_has_numbers_as_numbers_text_as_text_and_local_times(
    app: Flask, tmp_path: Path, args: list[str]
) -> None:
    from openpyxl import load_workbook

    path = tmp_path / "readings.xlsx"
    export(app, "-o", str(path), *args)  # without --format the .xlsx name decides
    sheet = load_workbook(path).active
    assert sheet is not None
    rows = list(sheet.iter_rows())
    assert tuple(cell.value for cell in rows[0]) == HEADER
    by_serial = {row[1].value: row for row in rows[1:]}
    hot, heat = by_serial["0145678"], by_serial["HT-1"]
    assert (hot[0].value, hot[0].data_type) == ("0012345", "s")
    assert (hot[1].value, hot[1].data_type) == ("0145678", "s")
    assert (hot[3].value, hot[3].data_type, hot[3].number_format) == (111.5, "n", "0.000")
    assert (heat[3].value, heat[3].data_type, heat[3].number_format) == (16.2, "n", "0.00")
    assert hot[4].is_date and hot[4].value == datetime(2026, 3, 23, 10, 15)  # Moscow time
    assert hot[4].number_format == "DD.MM.YYYY HH:MM:SS"
    assert hot[6].value is None


@pytest.mark.usefixtures("stored")
def test_excel_csv_has_decimal_commas_russian_dates_and_keeps_leading_zeros(
    app: Flask, tmp_path: Path
) -> None:
    path = tmp_path / "readings.csv"
    export(app, "-o", str(path), "--format", "excel")
    data = path.read_bytes()
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert tuple(rows[0]) == HEADER
    assert sorted(rows[1:]) == [
        ['="0012345"', '="0145678"', "hot_water", "111,500", "23.03.2026 10:15:00", "ivr", ""],
        ['="0012345"', "HT-1", "heat", "16,20", "23.03.2026 10:15:00", "ivr", ""],
    ]


@pytest.mark.usefixtures("stored")
def test_the_machine_csv_is_unchanged_exact_and_plain(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["export", "readings", "--period", "2026-03"])
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert sorted(rows[1:]) == [
        ["0012345", "0145678", "hot_water", "111.5", "2026-03-23T10:15:00+03:00", "ivr", ""],
        ["0012345", "HT-1", "heat", "16.2", "2026-03-23T10:15:00+03:00", "ivr", ""],
    ]


@pytest.mark.usefixtures("stored")
def test_xlsx_goes_to_a_pipe_but_not_to_a_terminal(app: Flask) -> None:
    from openpyxl import load_workbook

    result = app.test_cli_runner().invoke(
        args=["export", "readings", "--period", "2026-03", "--format", "xlsx"]
    )
    assert result.exit_code == 0, result.output
    assert load_workbook(io.BytesIO(result.stdout_bytes)).active.max_row == 3  # type: ignore[union-attr]


def test_excel_and_another_format_together_are_refused(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["export", "readings", "--period", "2026-03", "--excel", "--format", "xlsx"]
    )
    assert result.exit_code == 2
    assert "--excel is --format excel" in result.stderr

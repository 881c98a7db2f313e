"""Property: whatever the rows hold, the importers never crash, and every row is either imported
or reported with its line number; what was imported is in the database."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ivr.billing import meters_import, readings_import
from storage.models import Meter, Reading
from tests.conftest import empty_tables

PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any text a one-line field could hold: quotes, delimiters, control characters, Cyrillic.
# (Line breaks inside fields are rejected by design; arbitrary bytes below cover them.)
junk = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00\n\r"),
    max_size=30,
)


def field(*good: str) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(good), junk)


meter_row = st.tuples(
    field("1001", "1002", "1003", "", "А-17/2", "9" * 33),
    field("", "597904", "8 (8172) 59-79-05; +7 921 123-45-67", "12", "+7 000, 597904"),
    field("ул. Ленина, 1", ""),
    field("ВТС", "Водоканал", ""),
    field("S1", "S2", "S3", "S4", "", "s" * 65),
    field("hot_water", "heat", "ХВС", "gas", ""),
    field("", "м3", "Гкал", "units" * 5),
    field("", "5", "0", "10", "x"),
    field("", "3", "5", "-1"),
    field("", "2030-01-31", "31.12.2030", "2030-02-30"),
    field("", "кухня"),
)

reading_row = st.tuples(
    field("S1", "S2", "S9", ""),
    field(
        "2026-01-23", "23.02.2026 10:30", "2026-03-01T00:00:00+03:00", "2099-01-01", "2026-13-01"
    ),
    field("1", "12,5", "123.456", "-3", "123456", "1.0001", "1e3", ""),
)


def encode(
    rows: list[tuple[str, ...]], header: tuple[str, ...], delimiter: str, bom: bool
) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")


def run(app: Flask, tmp_path: Path, command: str, data: bytes) -> Result:
    path = tmp_path / f"{command}.csv"
    path.write_bytes(data)
    return app.test_cli_runner().invoke(args=["import", command, str(path)])


def check_report(result: Result, data: bytes, rows: list[tuple[str, ...]]) -> set[int]:
    """Exit 0 or 1, counts add up, each rejection names a distinct data line; returns them."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1), result.output
    summary = re.search(
        r"rows: (\d+), imported: (\d+), skipped as duplicates: (\d+), rejected: (\d+)",
        result.stdout,
    )
    assert summary, result.output
    total, imported, skipped, rejected = (int(n) for n in summary.groups())
    assert total == sum(1 for row in rows if any(cell.strip() for cell in row))
    assert total == imported + skipped + rejected
    assert (result.exit_code == 1) == (rejected > 0)
    lines = [int(n) for n in re.findall(r"^line (\d+): \S", result.stderr, re.M)]
    assert len(lines) == rejected == len(set(lines))
    physical_lines = data.decode("utf-8-sig").count("\n")
    assert all(2 <= line <= physical_lines for line in lines)
    return set(lines)


@PROPERTY_SETTINGS
@given(rows=st.lists(meter_row, max_size=12), delimiter=st.sampled_from(",;"), bom=st.booleans())
def test_meter_rows_are_imported_or_reported(
    app: Flask,
    tmp_path: Path,
    engine: Engine,
    rows: list[tuple[str, ...]],
    delimiter: str,
    bom: bool,
) -> None:
    empty_tables(engine)
    data = encode(rows, meters_import.COLUMNS, delimiter, bom)
    result = run(app, tmp_path, "meters", data)
    check_report(result, data, rows)
    imported = int(re.search(r"imported: (\d+)", result.stdout)[1])  # type: ignore[index]
    with Session(engine) as db:
        serials = set(db.scalars(select(Meter.serial)))
    # A row counted as imported left its meter; no meter came from elsewhere.
    assert len(serials) <= imported
    assert all(any(" ".join(row[4].split()) == s for row in rows) for s in serials)
    again = run(app, tmp_path, "meters", data)
    assert "meters new: 0" in again.stdout or "imported: 0" in again.stdout


METERS = b"""account,phones,address,supplier,meter_serial,meter_kind,unit,integer_digits,\
decimal_digits,verification_due,location
1001,597904,a,s,S1,hot_water,,5,3,,
1001,597904,a,s,S2,heat,,3,2,,
"""


@PROPERTY_SETTINGS
@given(rows=st.lists(reading_row, max_size=12), delimiter=st.sampled_from(",;"), bom=st.booleans())
def test_reading_rows_are_imported_or_reported_and_never_twice(
    app: Flask,
    tmp_path: Path,
    engine: Engine,
    rows: list[tuple[str, ...]],
    delimiter: str,
    bom: bool,
) -> None:
    empty_tables(engine)
    assert run(app, tmp_path, "meters", METERS).exit_code == 0
    data = encode(rows, readings_import.COLUMNS, delimiter, bom)
    result = run(app, tmp_path, "readings", data)
    check_report(result, data, rows)
    imported = int(re.search(r"imported: (\d+)", result.stdout)[1])  # type: ignore[index]
    count = select(func.count()).select_from(Reading)
    with Session(engine) as db:
        assert db.scalar(count) == imported
    again = run(app, tmp_path, "readings", data)
    assert re.search(r"imported: 0\b", again.stdout), again.output
    with Session(engine) as db:
        assert db.scalar(count) == imported


@pytest.mark.parametrize("command", ["meters", "readings"])
@PROPERTY_SETTINGS
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_an_importer(
    app: Flask, tmp_path: Path, command: str, data: bytes
) -> None:
    result = run(app, tmp_path, command, data)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1, 2)
    assert result.output.strip()

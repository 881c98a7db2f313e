"""`meterline import meters|readings` and `meterline export readings`."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import click
from flask.cli import with_appcontext

from ivr.billing import meters_import, readings_import
from ivr.billing.csvin import ENCODINGS, HeaderError, Table, open_table
from ivr.billing.export import valid_period, write_csv, write_excel_csv
from ivr.billing.report import Report
from ivr.billing.xlsx import write_xlsx
from ivr.commands.schema import needs_schema
from ivr.services import services
from storage.exports import billed_readings

# Exit codes: 1 when some rows were rejected, 2 when the file cannot be read as the table.
EXIT_REJECTED = 1
EXIT_BAD_FILE = 2

_encoding_option = click.option(
    "--encoding",
    type=click.Choice(ENCODINGS),
    default="auto",
    show_default=True,
    help="auto: UTF-8 (with or without BOM), else Windows-1251 with a note.",
)
_dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Check every row and report, write nothing."
)


@click.group("import")
def import_group() -> None:
    """Load accounts, meters and reading history from the billing centre's CSV files."""


@import_group.command("meters")
@click.argument("file", type=click.File("rb"))
@_encoding_option
@_dry_run_option
@click.option(
    "--phones",
    "phones_mode",
    type=click.Choice(["replace", "add"]),
    default="replace",
    show_default=True,
    help="replace: an account's phones become the file's; add: keep the stored ones too.",
)
@with_appcontext
@needs_schema
def import_meters_command(file: BinaryIO, encoding: str, dry_run: bool, phones_mode: str) -> None:
    """Upsert accounts, phones and meters from FILE (see docs/formats.md)."""
    table = _open(file, meters_import.COLUMNS, encoding)
    svc = services()
    report = meters_import.import_meters(
        svc.sessions,
        table,
        svc.settings.city_code,
        dry_run=dry_run,
        replace_phones=phones_mode == "replace",
    )
    _finish(report, dry_run)


@import_group.command("readings")
@click.argument("file", type=click.File("rb"))
@_encoding_option
@_dry_run_option
@with_appcontext
@needs_schema
def import_readings_command(file: BinaryIO, encoding: str, dry_run: bool) -> None:
    """Add reading history from FILE: meter_serial,taken_at,value (see docs/formats.md)."""
    table = _open(file, readings_import.COLUMNS, encoding)
    svc = services()
    report = readings_import.import_readings(
        svc.sessions, table, svc.settings.timezone, svc.settings.window, dry_run=dry_run
    )
    _finish(report, dry_run)


def _open(file: BinaryIO, columns: Sequence[str], encoding: str) -> Table:
    try:
        table = open_table(file.read(), columns, encoding)
    except HeaderError as exc:
        click.echo(f"{file.name}: {exc}", err=True)
        sys.exit(EXIT_BAD_FILE)
    if table.encoding != "utf-8":
        click.echo(f"note: {file.name} is not UTF-8; it was read as Windows-1251", err=True)
    return table


def _finish(report: Report, dry_run: bool) -> None:
    for line in report.lines():
        click.echo(line, err=True)
    prefix = "dry run, nothing written: " if dry_run else ""
    click.echo(prefix + report.summary())
    if report.rejected:
        sys.exit(EXIT_REJECTED)


@click.group("export")
def export_group() -> None:
    """Hand readings to the billing centre as CSV or xlsx."""


def _period(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not valid_period(value):
        raise click.BadParameter(f"{value!r} is not a period: expected YYYY-MM, e.g. 2026-03")
    return value


FORMATS = {"csv": write_csv, "excel": write_excel_csv, "xlsx": write_xlsx}


def _format(fmt: str | None, excel: bool, output: Path | None) -> str:
    if excel and fmt not in (None, "excel"):
        raise click.UsageError("--excel is --format excel: give one of them")
    if excel:
        return "excel"
    if fmt is None:
        # `-o readings.xlsx` with CSV inside would be a trap: the name decides.
        return "xlsx" if output is not None and output.suffix.lower() == ".xlsx" else "csv"
    return fmt


@export_group.command("readings")
@click.option("--period", required=True, callback=_period, help="The month, YYYY-MM.")
@click.option("--supplier", default=None, help="Only meters of this supplier.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default=None,
    help="csv: for machines (default; xlsx when -o ends in .xlsx); excel: CSV for Russian "
    "Excel (`;`, BOM, decimal comma); xlsx: an Excel workbook with typed cells.",
)
@click.option("--excel", is_flag=True, help="The same as --format excel.")
@with_appcontext
@needs_schema
def export_readings_command(
    period: str, supplier: str | None, output: Path | None, fmt: str | None, excel: bool
) -> None:
    """Accepted readings of a period as CSV or xlsx (see docs/formats.md)."""
    chosen = _format(fmt, excel, output)
    write = FORMATS[chosen]
    stdout = click.get_binary_stream("stdout")
    if output is None and chosen == "xlsx" and stdout.isatty():
        raise click.UsageError("an xlsx workbook is binary: write it to a file with -o FILE.xlsx")
    svc = services()
    tz = svc.settings.timezone
    with svc.sessions() as session:
        readings = billed_readings(session, period, supplier)
        if output is None:
            count = write(stdout, readings, tz)
            stdout.flush()
        else:
            count = _write_file(output, lambda out: write(out, readings, tz))
    target = output or "stdout"
    click.echo(f"exported {count} readings of {period} to {target}", err=True)


def _write_file(path: Path, write: Callable[[BinaryIO], int]) -> int:
    """Write through a temporary file renamed at the end: never a half-written export."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            count = write(out)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return count

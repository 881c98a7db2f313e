"""`meterline import readings`: meter history from the billing centre, used for validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ivr.billing import fields
from ivr.billing.csvin import Table
from ivr.billing.meters_import import ANALYZE_AFTER
from ivr.billing.report import Report, write_chunk
from storage.accounts import meter_registers, refresh_statistics
from storage.clock import utcnow
from storage.imported_readings import HistoryReading, imported_values, insert_history
from storage.ledger import period_of

COLUMNS = ("meter_serial", "taken_at", "value")

# A clock a little fast at the billing centre is not an error; a reading from next week is.
FUTURE_SLACK = timedelta(days=1)


@dataclass
class _Batch:
    """Rows waiting to be written, with the line each came from."""

    readings: list[tuple[int, HistoryReading]] = field(default_factory=list)
    # key -> (value, line) of every row accepted so far in this file.
    seen: dict[str, tuple[Decimal, int]] = field(default_factory=dict)


def parse_row(
    raw: dict[str, str],
    registers: dict[str, tuple[int, int, int]],
    tz: ZoneInfo,
    now: datetime,
    window: tuple[int, int],
) -> HistoryReading:
    """A validated reading, or RowError naming the first problem."""
    if "" in raw:
        raise fields.RowError(raw[""])
    serial = fields.text(raw["meter_serial"], "meter_serial", 64, required=True)
    register = registers.get(serial)
    if register is None:
        raise fields.RowError(f"unknown meter serial {serial!r} (import it with the meters first)")
    taken_at = fields.moment(raw["taken_at"], tz)
    if taken_at > now + FUTURE_SLACK:
        raise fields.RowError(f"taken_at {raw['taken_at'].strip()!r} is in the future")
    value = fields.amount(raw["value"])
    meter_id, integer_digits, decimal_digits = register
    too_long = fields.fits_register(value, integer_digits, decimal_digits)
    if too_long:
        raise fields.RowError(too_long)
    # The ledger's rule, as for the line: a reading taken after the window's last day
    # counts for the next month.
    period = period_of(taken_at, tz, window)
    return HistoryReading.of(meter_id, taken_at, value, period)


def _write(session: Session, items: Sequence[tuple[int, HistoryReading]]) -> None:
    insert_history(session, [reading for _, reading in items])


def import_readings(
    sessions: sessionmaker[Session],
    table: Table,
    tz: ZoneInfo,
    window: tuple[int, int],
    rows_per_chunk: int = 1000,
    dry_run: bool = False,
) -> Report:
    """Validate the file row by row and insert the new readings in chunks."""
    report = Report()
    with sessions() as session:
        registers = meter_registers(session)
    now = utcnow()
    batch = _Batch()
    for line, raw in table.rows():
        report.rows += 1
        try:
            reading = parse_row(raw, registers, tz, now, window)
            if _is_repeat(reading, line, batch):
                report.skipped += 1
                continue
        except fields.RowError as exc:
            report.reject(line, str(exc))
            continue
        batch.readings.append((line, reading))
        if len(batch.readings) >= rows_per_chunk:
            _flush(sessions, batch, report, dry_run)
    _flush(sessions, batch, report, dry_run)
    if report.imported >= ANALYZE_AFTER and not dry_run:
        with sessions() as session:
            refresh_statistics(session, ("readings",))
    return report


def _is_repeat(reading: HistoryReading, line: int, batch: _Batch) -> bool:
    """True for a repeat of an earlier row; RowError if it gives the same moment another value."""
    earlier = batch.seen.get(reading.key)
    if earlier is None:
        batch.seen[reading.key] = (reading.value, line)
        return False
    if earlier[0] == reading.value:
        return True
    raise fields.RowError(
        f"line {earlier[1]} gives value {format(earlier[0], 'f')} for the same meter "
        f"and time; this line gives {format(reading.value, 'f')}"
    )


def _flush(sessions: sessionmaker[Session], batch: _Batch, report: Report, dry_run: bool) -> None:
    """Drop readings already in the database, then write the rest as one chunk."""
    if not batch.readings:
        return
    fresh = _not_yet_stored(sessions, batch.readings, report)
    batch.readings.clear()
    if dry_run:
        report.imported += len(fresh)
        return
    refused: dict[int, str] = {}

    def failed(item: tuple[int, HistoryReading], reason: str) -> None:
        refused[item[0]] = reason

    report.imported += write_chunk(sessions, fresh, _write, failed)
    if refused:
        # Another import may have stored the same readings meanwhile: duplicates, not errors.
        retried = [(line, reading) for line, reading in fresh if line in refused]
        for line, _ in _not_yet_stored(sessions, retried, report):
            report.reject(line, refused[line])


def _not_yet_stored(
    sessions: sessionmaker[Session], items: list[tuple[int, HistoryReading]], report: Report
) -> list[tuple[int, HistoryReading]]:
    """The items not imported before; repeats are counted as skipped, other values rejected."""
    with sessions() as session:
        stored = imported_values(session, [r.key for _, r in items])
    fresh: list[tuple[int, HistoryReading]] = []
    for line, reading in items:
        previous = stored.get(reading.key)
        if previous is None:
            fresh.append((line, reading))
        elif previous == reading.value:
            report.skipped += 1
        else:
            report.reject(
                line,
                f"this meter already has value {format(previous, 'f')} imported for "
                f"{reading.taken_at.isoformat()}; this line gives {format(reading.value, 'f')}",
            )
    return fresh

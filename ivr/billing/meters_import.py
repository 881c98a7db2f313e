"""`meterline import meters`: accounts, their phones and meters from the billing centre's file.

Validation runs in memory against a snapshot of the database (no query per row); the accepted
rows are grouped by account and written in chunks, one transaction per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy.orm import Session, sessionmaker

from ivr.billing import fields
from ivr.billing.csvin import Table
from ivr.billing.report import Report, write_chunk
from ivr.phones import normalize
from storage.accounts import (
    AccountUpsert,
    Directory,
    MeterFields,
    UpsertCounts,
    refresh_statistics,
    upsert_accounts,
)

COLUMNS = (
    "account",
    "phones",
    "address",
    "supplier",
    "meter_serial",
    "meter_kind",
    "unit",
    "integer_digits",
    "decimal_digits",
    "verification_due",
    "location",
)

DEFAULT_INTEGER_DIGITS = 5
DEFAULT_DECIMAL_DIGITS = 3

# Rows written after which the planner's statistics are refreshed (PostgreSQL).
ANALYZE_AFTER = 10_000


@dataclass(slots=True)
class MeterLine:
    """One valid row of the meters file."""

    account: str
    address: str
    supplier: str
    phones: tuple[str, ...]
    meter: MeterFields


@dataclass
class Plan:
    """Accepted rows grouped by account (in order of first appearance), with their lines."""

    units: dict[str, AccountUpsert] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)
    serials: dict[str, tuple[str, int]] = field(default_factory=dict)

    def chunks(self, rows_per_chunk: int) -> Iterable[list[tuple[AccountUpsert, list[int]]]]:
        """Whole accounts, about `rows_per_chunk` rows at a time."""
        chunk: list[tuple[AccountUpsert, list[int]]] = []
        size = 0
        for number, unit in self.units.items():
            chunk.append((unit, self.lines[number]))
            size += len(self.lines[number])
            if size >= rows_per_chunk:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk


def parse_row(raw: dict[str, str], city_code: str) -> MeterLine:
    """A validated row, or RowError naming the first bad field."""
    if "" in raw:
        raise fields.RowError(raw[""])
    kind = fields.kind(raw["meter_kind"])
    meter = MeterFields.shared(
        serial=fields.text(raw["meter_serial"], "meter_serial", 64, required=True),
        kind=kind,
        unit=fields.text(raw["unit"], "unit", 16) or fields.DEFAULT_UNITS[kind],
        integer_digits=fields.integer(
            raw["integer_digits"], "integer_digits", 1, 9, DEFAULT_INTEGER_DIGITS
        ),
        decimal_digits=fields.integer(
            raw["decimal_digits"], "decimal_digits", 0, 4, DEFAULT_DECIMAL_DIGITS
        ),
        supplier=fields.text(raw["supplier"], "supplier", 100),
        location=fields.text(raw["location"], "location", 100),
        verification_due=fields.day(raw["verification_due"], "verification_due"),
    )
    return MeterLine(
        account=fields.account_number(raw["account"]),
        address=fields.text(raw["address"], "address", 300),
        supplier=meter.supplier,
        phones=_phones(raw["phones"], city_code),
        meter=meter,
    )


@lru_cache(maxsize=4096)
def _phones(raw: str, city_code: str) -> tuple[str, ...]:
    # An account's phones repeat on each of its meter rows; phonenumbers costs ~30 µs a number.
    return tuple(fields.phones(raw, city_code, normalize))


def plan_rows(
    rows: Iterable[tuple[int, dict[str, str]]],
    directory: Directory,
    city_code: str,
    report: Report,
    replace_phones: bool = True,
) -> Plan:
    """Validate every row; reject bad ones and serials that belong to another account."""
    plan = Plan()
    for line, raw in rows:
        report.rows += 1
        try:
            row = parse_row(raw, city_code)
            _check_owner(row, line, directory, plan)
        except fields.RowError as exc:
            report.reject(line, str(exc))
            continue
        unit = plan.units.get(row.account)
        if unit is None:
            # The account's first row gives its address and supplier.
            unit = plan.units[row.account] = AccountUpsert(
                row.account, row.address, row.supplier, replace_phones=replace_phones
            )
            plan.lines[row.account] = []
        unit.phones.update(row.phones)
        unit.meters[row.meter.serial] = row.meter
        plan.lines[row.account].append(line)
        plan.serials.setdefault(row.meter.serial, (row.account, line))
    return plan


def _check_owner(row: MeterLine, line: int, directory: Directory, plan: Plan) -> None:
    serial = row.meter.serial
    owner = directory.owner(serial)
    if owner is not None and owner != row.account:
        raise fields.RowError(f"meter serial {serial!r} belongs to account {owner!r}")
    earlier = plan.serials.get(serial)
    if earlier is not None and earlier[0] != row.account:
        raise fields.RowError(
            f"meter serial {serial!r} is given to account {earlier[0]!r} on line {earlier[1]}"
        )


def import_meters(
    sessions: sessionmaker[Session],
    table: Table,
    city_code: str,
    rows_per_chunk: int = 1000,
    dry_run: bool = False,
    replace_phones: bool = True,
) -> Report:
    """Validate and upsert the whole file; return what happened."""
    report = Report()
    with sessions() as session:
        directory = Directory.load(session)
    plan = plan_rows(table.rows(), directory, city_code, report, replace_phones)
    if dry_run:
        report.imported = sum(len(lines) for lines in plan.lines.values())
        return report
    counts = UpsertCounts()

    def write(session: Session, items: Sequence[tuple[AccountUpsert, list[int]]]) -> None:
        counts.add(upsert_accounts(session, directory, [unit for unit, _ in items]))

    def failed(item: tuple[AccountUpsert, list[int]], reason: str) -> None:
        for line in item[1]:
            report.reject(line, f"account {item[0].number!r}: {reason}")
        report.imported -= len(item[1])

    def reload(session: Session) -> None:
        fresh = Directory.load(session)
        directory.__dict__.update(fresh.__dict__)

    for chunk in plan.chunks(rows_per_chunk):
        report.imported += sum(len(lines) for _, lines in chunk)
        write_chunk(sessions, chunk, write, failed, reset=reload)
    report.details = dict(vars(counts))
    _refresh_statistics(sessions, sum(report.details.values()))
    return report


def _refresh_statistics(sessions: sessionmaker[Session], written: int) -> None:
    if written >= ANALYZE_AFTER:
        with sessions() as session:
            refresh_statistics(session, ("accounts", "meters", "phones"))

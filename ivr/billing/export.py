"""Readings of a period as the billing centre's CSV."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import TextIO
from zoneinfo import ZoneInfo

from storage.exports import ExportedReading

HEADER = ("account", "meter_serial", "meter_kind", "value", "taken_at", "source", "call_sid")

_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def valid_period(raw: str) -> bool:
    """True for YYYY-MM with a real month.

    >>> valid_period("2026-03"), valid_period("2026-13"), valid_period("03.2026")
    (True, False, False)
    """
    return _PERIOD.fullmatch(raw) is not None


def csv_fields(reading: ExportedReading, tz: ZoneInfo) -> list[str]:
    """One reading as CSV fields: exact value with `.`, local time with its offset."""
    return [
        reading.account,
        reading.meter_serial,
        reading.meter_kind,
        format(reading.value, "f"),
        reading.taken_at.astimezone(tz).isoformat(timespec="seconds"),
        reading.source,
        reading.call_sid or "",
    ]


def write_readings(
    out: TextIO, readings: Iterable[ExportedReading], tz: ZoneInfo, delimiter: str = ","
) -> int:
    """Write the header and every reading; return how many readings were written."""
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(HEADER)
    count = 0
    for reading in readings:
        writer.writerow(csv_fields(reading, tz))
        count += 1
    return count

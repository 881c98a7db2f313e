"""Readings of a period for the billing centre: CSV for machines, CSV for Russian Excel, xlsx."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import BinaryIO
from zoneinfo import ZoneInfo

from storage.exports import ExportedReading

HEADER = ("account", "meter_serial", "meter_kind", "value", "taken_at", "source", "call_sid")

_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")

# OWASP's "CSV injection" list: a cell starting with one of these is a formula to a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+([.,]\d+)?")
# Excel turns an all-digit field into a number: leading zeros go, and past 15 digits so do
# the last ones.
_LOSES_DIGITS = re.compile(r"0\d+|\d{16,}")


def valid_period(raw: str) -> bool:
    """True for YYYY-MM with a real month.

    >>> valid_period("2026-03"), valid_period("2026-13"), valid_period("03.2026")
    (True, False, False)
    """
    return _PERIOD.fullmatch(raw) is not None


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet would run as a formula, prefixed with `'` (as OWASP advises).

    Plain numbers stay as they are: `-5` or `+7921` computes nothing.

    >>> neutralise("=HYPERLINK(\\"http://x\\")"), neutralise("@SUM(A1)"), neutralise("-12.5")
    ('\\'=HYPERLINK("http://x")', "'@SUM(A1)", '-12.5')
    """
    if cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def with_decimals(value: Decimal, decimals: int) -> Decimal:
    """The value with (at least) the meter's number of decimals; never rounded.

    >>> with_decimals(Decimal("101.25"), 3), with_decimals(Decimal("12"), 0)
    (Decimal('101.250'), Decimal('12'))
    """
    exponent = value.as_tuple().exponent
    places = min(exponent if isinstance(exponent, int) else 0, -decimals)
    return value.quantize(Decimal(1).scaleb(places))


def csv_fields(reading: ExportedReading, tz: ZoneInfo) -> list[str]:
    """One reading for machines: exact value with `.`, ISO 8601 local time with its offset."""
    return [
        neutralise(reading.account),
        neutralise(reading.meter_serial),
        reading.meter_kind,
        format(reading.value, "f"),
        reading.taken_at.astimezone(tz).isoformat(timespec="seconds"),
        reading.source,
        neutralise(reading.call_sid or ""),
    ]


def _excel_text(cell: str) -> str:
    # `="0145678"` is the one way a CSV keeps Excel from reading digits as a number. Only an
    # all-digit cell gets it, so nothing a caller or importer typed is ever run as a formula.
    if _LOSES_DIGITS.fullmatch(cell):
        return f'="{cell}"'
    return neutralise(cell)


def excel_fields(reading: ExportedReading, tz: ZoneInfo) -> list[str]:
    """One reading for Russian Excel: decimal comma, the meter's decimals, DD.MM.YYYY time."""
    value = format(with_decimals(reading.value, reading.decimal_digits), "f")
    return [
        _excel_text(reading.account),
        _excel_text(reading.meter_serial),
        reading.meter_kind,
        value.replace(".", ","),
        reading.taken_at.astimezone(tz).strftime("%d.%m.%Y %H:%M:%S"),
        reading.source,
        neutralise(reading.call_sid or ""),
    ]


def _csv_writer(
    fields: Callable[[ExportedReading, ZoneInfo], list[str]], delimiter: str, encoding: str
) -> Callable[[BinaryIO, Iterable[ExportedReading], ZoneInfo], int]:
    def write(out: BinaryIO, readings: Iterable[ExportedReading], tz: ZoneInfo) -> int:
        text = io.TextIOWrapper(out, encoding=encoding, newline="")
        writer = csv.writer(text, delimiter=delimiter)
        writer.writerow(HEADER)
        count = 0
        for reading in readings:
            writer.writerow(fields(reading, tz))
            count += 1
        text.flush()
        text.detach()  # the caller owns `out`
        return count

    return write


write_csv = _csv_writer(csv_fields, ",", "utf-8")
write_excel_csv = _csv_writer(excel_fields, ";", "utf-8-sig")

"""Readings of a period as an xlsx workbook: typed cells, so Excel in any locale reads them right.

Values are numbers shown with the meter's decimals, accounts and serials are text (leading
zeros kept), `taken_at` is a date-time in the line's time zone. Text cells are written as
strings, never as formulas: a cell that starts with `=` is text in the file, so nothing an
importer or a caller typed can run (openpyxl would otherwise take such a string for a formula).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from ivr.billing.export import HEADER, with_decimals
from storage.exports import ExportedReading

DATETIME_FORMAT = "DD.MM.YYYY HH:MM:SS"
# Control characters the xlsx format cannot hold (openpyxl refuses them).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_WIDTHS = (14, 18, 12, 14, 20, 10, 36)


def number_format(decimals: int) -> str:
    """Excel's format code for a value with `decimals` places.

    >>> number_format(3), number_format(0)
    ('0.000', '0')
    """
    return "0." + "0" * decimals if decimals > 0 else "0"


def write_xlsx(out: BinaryIO, readings: Iterable[ExportedReading], tz: ZoneInfo) -> int:
    """Write the header and every reading as one sheet; return how many readings were written."""
    # Imported here: openpyxl is only needed by this command, not by every `meterline` start.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    # Write-only mode streams rows to a temporary file: memory stays flat for a city.
    book = Workbook(write_only=True)
    sheet = book.create_sheet("readings")
    for index, width in enumerate(_WIDTHS):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.freeze_panes = "A2"

    def text(value: str) -> Any:
        cell = WriteOnlyCell(sheet, value=_ILLEGAL.sub("\ufffd", value))
        cell.data_type = "s"
        return cell

    sheet.append([text(name) for name in HEADER])
    count = 0
    for reading in readings:
        value = WriteOnlyCell(sheet, value=with_decimals(reading.value, reading.decimal_digits))
        value.number_format = number_format(reading.decimal_digits)
        local = reading.taken_at.astimezone(tz).replace(tzinfo=None, microsecond=0)
        taken = WriteOnlyCell(sheet, value=local)
        taken.number_format = DATETIME_FORMAT
        sheet.append(
            [
                text(reading.account),
                text(reading.meter_serial),
                text(reading.meter_kind),
                value,
                taken,
                text(reading.source),
                text(reading.call_sid) if reading.call_sid else None,
            ]
        )
        count += 1
    book.save(out)
    return count

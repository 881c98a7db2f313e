"""Reading a billing centre's CSV file: encoding, delimiter, header, rows with line numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

ENCODINGS = ("auto", "utf-8", "cp1251")


class HeaderError(ValueError):
    """The file cannot be read as the expected table; the message says why."""


@dataclass
class Table:
    """A decoded CSV file whose header matched; `rows()` yields (line number, fields)."""

    text: str
    delimiter: str
    encoding: str
    columns: list[str]

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Each non-blank data line with its number (header = 1), or {"": reason} if unreadable.

        A record is one line. A stray quote would otherwise make the csv module swallow every
        following line into one field, silently; read line by line, it costs its own line only.
        Lines end at "\n", as `grep -n` counts them.
        """
        lines = io.StringIO(self.text, newline="\n")
        next(lines, None)
        for number, line in enumerate(lines, start=2):
            line = line.rstrip("\n").removesuffix("\r")
            if not line.strip():
                continue
            try:
                record = next(csv.reader([line], delimiter=self.delimiter, strict=True))
            except csv.Error as exc:
                yield number, {"": _unreadable(exc)}
                continue
            if not any(field.strip() for field in record):
                continue
            if len(record) != len(self.columns):
                yield number, {"": f"expected {len(self.columns)} fields, found {len(record)}"}
                continue
            yield number, dict(zip(self.columns, record, strict=True))


def _unreadable(exc: csv.Error) -> str:
    if "unexpected end of data" in str(exc):
        return (
            "a quoted field is not closed on this line (a stray quote, or a line break in a field)"
        )
    return f"unreadable CSV line: {exc}"


def decode(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """Text and the encoding used: UTF-8 (BOM or not); in auto mode Windows-1251 as a fallback.

    >>> decode("счёт".encode("cp1251"))
    ('счёт', 'cp1251')
    """
    if encoding not in ENCODINGS:
        raise HeaderError(f"unknown encoding {encoding!r}: expected one of {', '.join(ENCODINGS)}")
    if encoding in ("auto", "utf-8"):
        try:
            return data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError as exc:
            if encoding == "utf-8":
                raise HeaderError(
                    f"the file is not valid UTF-8 (byte {exc.start}); "
                    "save it as UTF-8 or pass --encoding cp1251"
                ) from None
    try:
        # Excel in Russia saves "CSV" in Windows-1251; 0x98 is the one byte it cannot hold.
        return data.decode("cp1251"), "cp1251"
    except UnicodeDecodeError:
        raise HeaderError("the file is neither UTF-8 nor Windows-1251 text") from None


def sniff_delimiter(header_line: str) -> str:
    """`;` (Excel in Russia) or `,`, whichever the header line uses more."""
    return ";" if header_line.count(";") > header_line.count(",") else ","


def open_table(data: bytes, expected: Sequence[str], encoding: str = "auto") -> Table:
    """Decode `data` and check its header holds exactly the `expected` columns (any order)."""
    text, used = decode(data, encoding)
    if "\x00" in text:
        raise HeaderError("the file holds NUL bytes: it is not a text CSV file")
    first = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise HeaderError("the file is empty: expected a header line: " + ",".join(expected))
    delimiter = sniff_delimiter(first)
    text = text.lstrip("\ufeff")
    try:
        header = next(csv.reader(io.StringIO(first, newline="\n"), delimiter=delimiter))
    except csv.Error as exc:
        raise HeaderError(f"the header line is not readable CSV: {exc}") from None
    columns = [name.strip().lower() for name in header]
    _check_header(columns, expected)
    return Table(text=text, delimiter=delimiter, encoding=used, columns=columns)


def _check_header(columns: list[str], expected: Sequence[str]) -> None:
    missing = [name for name in expected if name not in columns]
    unknown = [name for name in columns if name not in expected]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    problems = []
    if missing:
        problems.append("missing columns: " + ", ".join(missing))
    if unknown:
        problems.append("unknown columns: " + ", ".join(repr(name) for name in unknown))
    if duplicated:
        problems.append("repeated columns: " + ", ".join(duplicated))
    if problems:
        raise HeaderError(
            "bad header (" + "; ".join(problems) + "); expected: " + ",".join(expected)
        )

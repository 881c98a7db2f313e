"""The billing files' field parsers, decoding and header checks (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ivr.billing import fields
from ivr.billing.csvin import HeaderError, decode, open_table, sniff_delimiter
from ivr.billing.export import valid_period
from ivr.phones import normalize

MSK = ZoneInfo("Europe/Moscow")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("  ", []),
        ("+78172597904", ["+78172597904"]),
        ("8 (8172) 59-79-04", ["+78172597904"]),
        ("59-79-04", ["+78172597904"]),
        ("597904; 8-921-123-45-67", ["+78172597904", "+79211234567"]),
        ("597904, +7 921 123 45 67;", ["+78172597904", "+79211234567"]),
        ("597904,597904", ["+78172597904"]),
    ],
)
def test_it_normalises_every_phone_of_the_field(raw: str, expected: list[str]) -> None:
    assert fields.phones(raw, "8172", normalize) == expected


@pytest.mark.parametrize("raw", ["12", "597904; 12345", "abc", "+7 999"])
def test_it_rejects_a_field_with_a_bad_phone(raw: str) -> None:
    with pytest.raises(fields.RowError, match="is not a valid phone number"):
        fields.phones(raw, "8172", normalize)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hot_water", "hot_water"),
        ("HOT_WATER", "hot_water"),
        ("ГВС", "hot_water"),
        ("горячая  вода", "hot_water"),
        ("ХВС", "cold_water"),
        ("cold water", "cold_water"),
        ("Отопление", "heat"),
        ("тепловая энергия", "heat"),
    ],
)
def test_it_reads_meter_kinds_and_their_russian_names(raw: str, expected: str) -> None:
    assert fields.kind(raw) == expected


@pytest.mark.parametrize("raw", ["", "gas", "электричество", "hot"])
def test_it_rejects_unknown_meter_kinds(raw: str) -> None:
    with pytest.raises(fields.RowError, match="meter_kind"):
        fields.kind(raw)


@pytest.mark.parametrize(("raw", "expected"), [("", 5), ("1", 1), ("9", 9), (" 7 ", 7)])
def test_it_reads_register_digits(raw: str, expected: int) -> None:
    assert fields.integer(raw, "integer_digits", 1, 9, 5) == expected


@pytest.mark.parametrize("raw", ["0", "10", "-1", "5.0", "five", "0005"])
def test_it_rejects_register_digits_out_of_range(raw: str) -> None:
    with pytest.raises(fields.RowError, match="integer_digits .* from 1 to 9"):
        fields.integer(raw, "integer_digits", 1, 9, 5)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", None), ("2030-01-31", date(2030, 1, 31)), ("31.01.2030", date(2030, 1, 31)),
     ("1.2.2030", date(2030, 2, 1))],
)  # fmt: skip
def test_it_reads_verification_dates(raw: str, expected: date | None) -> None:
    assert fields.day(raw, "verification_due") == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("2030-02-30", "not a real date"), ("31/01/2030", "expected YYYY-MM-DD or DD.MM.YYYY"),
     ("30.13.2030", "not a real date")],
)  # fmt: skip
def test_it_rejects_bad_verification_dates(raw: str, reason: str) -> None:
    with pytest.raises(fields.RowError, match=reason):
        fields.day(raw, "verification_due")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-23", datetime(2026, 3, 23, tzinfo=MSK)),
        ("2026-03-23T10:15", datetime(2026, 3, 23, 10, 15, tzinfo=MSK)),
        ("2026-03-23 10:15:30", datetime(2026, 3, 23, 10, 15, 30, tzinfo=MSK)),
        ("2026-03-23T07:15:00Z", datetime(2026, 3, 23, 7, 15, tzinfo=UTC)),
        ("2026-03-23T10:15:00+03:00", datetime(2026, 3, 23, 7, 15, tzinfo=UTC)),
        ("23.03.2026", datetime(2026, 3, 23, tzinfo=MSK)),
        ("23.03.2026 10:15", datetime(2026, 3, 23, 10, 15, tzinfo=MSK)),
    ],
)
def test_it_reads_taken_at_in_local_time_unless_an_offset_is_given(
    raw: str, expected: datetime
) -> None:
    assert fields.moment(raw, MSK) == expected


@pytest.mark.parametrize("raw", ["", "yesterday", "2026-02-30", "32.01.2026", "2026/03/23"])
def test_it_rejects_bad_taken_at(raw: str) -> None:
    with pytest.raises(fields.RowError, match="taken_at"):
        fields.moment(raw, MSK)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", "0"), ("123.45", "123.45"), ("123,45", "123.45"), ("00123,450", "123.450"),
     ("12 345,6", "12345.6"), ("12\u00a0345.6", "12345.6")],
)  # fmt: skip
def test_it_reads_values_exactly_with_either_separator(raw: str, expected: str) -> None:
    assert fields.amount(raw) == Decimal(expected)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("-1", "negative"), ("-1,5", "negative"), ("", "not a number"), ("1e3", "not a number"),
     ("1.2.3", "not a number"), ("NaN", "not a number"), ("1,", "not a number")],
)  # fmt: skip
def test_it_rejects_bad_values(raw: str, reason: str) -> None:
    with pytest.raises(fields.RowError, match=reason):
        fields.amount(raw)


@pytest.mark.parametrize(
    ("value", "ints", "decs", "problem"),
    [("99999.999", 5, 3, None), ("0.5", 1, 1, None), ("100", 3, 0, None), ("1.500", 5, 1, None),
     ("100000", 5, 3, "6 integer digits"), ("1.0001", 5, 3, "4 decimals"),
     ("1.5", 5, 0, "1 decimals")],
)  # fmt: skip
def test_it_checks_values_against_the_register(
    value: str, ints: int, decs: int, problem: str | None
) -> None:
    found = fields.fits_register(Decimal(value), ints, decs)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_it_decodes_utf8_with_or_without_bom_and_falls_back_to_cp1251() -> None:
    assert decode("счёт".encode()) == ("счёт", "utf-8")
    assert decode("\ufeffсчёт".encode()) == ("счёт", "utf-8")
    assert decode("счёт".encode("cp1251")) == ("счёт", "cp1251")


def test_it_refuses_non_utf8_when_utf8_is_demanded() -> None:
    with pytest.raises(HeaderError, match="not valid UTF-8.*--encoding cp1251"):
        decode("счёт".encode("cp1251"), "utf-8")


@pytest.mark.parametrize(
    ("line", "expected"), [("a,b,c", ","), ("a;b;c", ";"), ('a;"b,c";d', ";"), ("a", ",")]
)
def test_it_sniffs_the_delimiter_from_the_header(line: str, expected: str) -> None:
    assert sniff_delimiter(line) == expected


def test_it_names_missing_and_unknown_columns() -> None:
    with pytest.raises(HeaderError) as caught:
        open_table(b"meter_serial,taken,value\n", ("meter_serial", "taken_at", "value"))
    assert "missing columns: taken_at" in str(caught.value)
    assert "unknown columns: 'taken'" in str(caught.value)


def test_it_accepts_columns_in_any_order_and_case() -> None:
    table = open_table(b"VALUE; Meter_Serial ;taken_at\r\n1;S;2026-01-01\r\n",
                       ("meter_serial", "taken_at", "value"))  # fmt: skip
    assert list(table.rows()) == [
        (2, {"value": "1", "meter_serial": "S", "taken_at": "2026-01-01"})
    ]


def test_it_numbers_lines_as_grep_does() -> None:
    data = b"a,b\n1,2\r\n\n3,4\n5\n,\n6,7"
    assert list(open_table(data, ("a", "b")).rows()) == [
        (2, {"a": "1", "b": "2"}),
        (4, {"a": "3", "b": "4"}),
        (5, {"": "expected 2 fields, found 1"}),
        (7, {"a": "6", "b": "7"}),
    ]


def test_a_stray_quote_costs_its_own_line_only() -> None:
    data = b'a,b\n1,"abc\n3,4\n"x"y,5\n6,"7,8"\n'
    rows = list(open_table(data, ("a", "b")).rows())
    assert rows[0] == (2, {"": "a quoted field is not closed on this line (a stray quote, "
                                "or a line break in a field)"})  # fmt: skip
    assert rows[1] == (3, {"a": "3", "b": "4"})
    assert rows[2][0] == 4 and "unreadable CSV line" in rows[2][1][""]
    assert rows[3] == (5, {"a": "6", "b": "7,8"})


def test_an_oversized_field_is_one_rejected_line() -> None:
    data = b"a,b\n1," + b"x" * 200_000 + b"\n3,4\n"
    rows = list(open_table(data, ("a", "b")).rows())
    assert rows[0][0] == 2 and "field larger than field limit" in rows[0][1][""]
    assert rows[1] == (3, {"a": "3", "b": "4"})


@pytest.mark.parametrize("data", [b"", b"\n\n", "\ufeff".encode()])
def test_it_calls_an_empty_file_empty(data: bytes) -> None:
    with pytest.raises(HeaderError, match="the file is empty"):
        open_table(data, ("a", "b"))


@pytest.mark.parametrize(("raw", "ok"), [("2026-03", True), ("2026-00", False), ("2026-3", False)])
def test_it_checks_the_period(raw: str, ok: bool) -> None:
    assert valid_period(raw) is ok

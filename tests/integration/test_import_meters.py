"""`meterline import meters` on the real database: upserts, phones, rejections, idempotency."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.models import Account, Meter, Phone

HEADER = (
    "account,phones,address,supplier,meter_serial,meter_kind,unit,"
    "integer_digits,decimal_digits,verification_due,location"
)


def run_import(app: Flask, tmp_path: Path, body: str | bytes, *extra: str) -> Result:
    path = tmp_path / "meters.csv"
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8")
    else:
        path.write_bytes(body)
    return app.test_cli_runner().invoke(args=["import", "meters", str(path), *extra])


def rejected(result: Result) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"^line (\d+): (.*)$", result.stderr, re.M)}


def snapshot(engine: Engine) -> dict[str, object]:
    """Every account with its phones and meters, ids left out."""
    with Session(engine) as db:
        accounts = {
            a.number: (a.address, a.supplier, sorted(p.e164 for p in a.phones))
            for a in db.scalars(select(Account))
        }
        meters = {
            m.serial: (m.account.number, m.kind, m.unit, m.integer_digits, m.decimal_digits,
                       m.supplier, m.location, m.verification_due, m.active)
            for m in db.scalars(select(Meter))
        }  # fmt: skip
    return {"accounts": accounts, "meters": meters}


GOOD = f"""{HEADER}
1001,"8 (8172) 59-79-04; +7 921 123-45-67",ул. Ленина 1,ВТС,HW-1,hot_water,,5,3,2030-01-31,кухня
1001,597905,ул. Ленина 1,ВТС,HT-1,heat,,4,3,31.12.2031,
1002,,ул. Мира 2,Водоканал,CW-2,ХВС,м3,5,2,,ванная
"""


def test_it_creates_accounts_phones_and_meters(app: Flask, tmp_path: Path, engine: Engine) -> None:
    result = run_import(app, tmp_path, GOOD)
    assert result.exit_code == 0, result.output
    assert "rows: 3, imported: 3" in result.stdout
    state = snapshot(engine)
    assert state["accounts"] == {
        "1001": ("ул. Ленина 1", "ВТС", ["+78172597904", "+78172597905", "+79211234567"]),
        "1002": ("ул. Мира 2", "Водоканал", []),
    }
    meters = state["meters"]
    assert isinstance(meters, dict)
    assert meters["HW-1"][1:3] == ("hot_water", "м3")
    assert meters["HT-1"][1:3] == ("heat", "Гкал")
    assert meters["CW-2"][1:7] == ("cold_water", "м3", 5, 2, "Водоканал", "ванная")


def test_importing_the_same_file_twice_leaves_the_same_database(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    assert run_import(app, tmp_path, GOOD).exit_code == 0
    first = snapshot(engine)
    again = run_import(app, tmp_path, GOOD)
    assert again.exit_code == 0
    assert "accounts new: 0, accounts changed: 0, meters new: 0, meters changed: 0" in again.stdout
    assert snapshot(engine) == first


def test_a_later_file_updates_fields_and_replaces_the_phone_set(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    assert run_import(app, tmp_path, GOOD).exit_code == 0
    newer = f"""{HEADER}
1001,8-921-123-45-67,ул. Ленина 1 кв 5,ВТС,HW-1,hot_water,,6,3,2034-01-31,кухня
1001,,ул. Ленина 1 кв 5,ВТС,HT-1,heat,,4,3,,
"""
    result = run_import(app, tmp_path, newer)
    assert result.exit_code == 0, result.output
    state = snapshot(engine)
    accounts, meters = state["accounts"], state["meters"]
    assert isinstance(accounts, dict) and isinstance(meters, dict)
    assert accounts["1001"] == ("ул. Ленина 1 кв 5", "ВТС", ["+79211234567"])
    assert meters["HW-1"][3] == 6
    assert meters["HT-1"][7] is None
    assert "1002" in accounts  # accounts missing from a file are left alone


def test_with_phones_add_a_file_only_adds_numbers(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    assert run_import(app, tmp_path, GOOD).exit_code == 0
    partial = (
        f"{HEADER}\n1001,8-921-000-00-01,ул. Ленина 1,ВТС,HW-1,hot_water,,5,3,2030-01-31,кухня\n"
    )
    result = run_import(app, tmp_path, partial, "--phones", "add")
    assert result.exit_code == 0, result.output
    assert "phones added: 1, phones removed: 0" in result.stdout
    accounts = snapshot(engine)["accounts"]
    assert isinstance(accounts, dict)
    assert accounts["1001"][2] == [
        "+78172597904", "+78172597905", "+79210000001", "+79211234567"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("1003,12345,a,s,X-1,hot_water,,5,3,,", "phone '12345' is not a valid phone number"),
        ('1003,"597904;+7 000",a,s,X-1,hot_water,,5,3,,', "phone '+7 000' is not a valid"),
        ("1003,,a,s,X-1,gas,,5,3,,", "meter_kind 'gas' is not one of"),
        ("1003,,a,s,X-1,hot_water,,0,3,,", "integer_digits '0' is not a whole number from 1 to 9"),
        ("1003,,a,s,X-1,hot_water,,10,3,,", "integer_digits '10'"),
        ("1003,,a,s,X-1,hot_water,,5,5,,", "decimal_digits '5' is not a whole number from 0 to 4"),
        ("1003,,a,s,X-1,hot_water,,5,3,2030-02-30,", "verification_due '2030-02-30' is not a real"),
        ("1003,,a,s,X-1,hot_water,,5,3,soon,", "verification_due 'soon' is not a date"),
        (",,a,s,X-1,hot_water,,5,3,,", "account is empty"),
        ("1003,,a,s,,hot_water,,5,3,,", "meter_serial is empty"),
        ("1003,,a,s,X-1,hot_water", "expected 11 fields, found 6"),
        ("1003,,a,s,HW-1,hot_water,,5,3,,", "meter serial 'HW-1' belongs to account '1001'"),
    ],
)
def test_a_bad_row_is_rejected_with_its_line_and_nothing_of_it_is_written(
    app: Flask, tmp_path: Path, engine: Engine, row: str, reason: str
) -> None:
    assert run_import(app, tmp_path, GOOD).exit_code == 0
    before = snapshot(engine)
    body = f"{HEADER}\n1004,,b,s,OK-4,heat,,4,3,,\n{row}\n"
    result = run_import(app, tmp_path, body)
    assert result.exit_code == 1
    assert reason in rejected(result)[3]
    assert "rows: 2, imported: 1" in result.stdout and "rejected: 1" in result.stdout
    after = snapshot(engine)
    accounts = after["accounts"]
    assert isinstance(accounts, dict)
    assert "1003" not in accounts and "1004" in accounts
    assert {k: v for k, v in accounts.items() if k != "1004"} == before["accounts"]


def test_a_serial_given_twice_in_one_file_names_the_first_account_and_line(
    app: Flask, tmp_path: Path
) -> None:
    body = f"{HEADER}\n1,,a,s,S-1,heat,,4,3,,\n2,,b,s,S-1,heat,,4,3,,\n"
    result = run_import(app, tmp_path, body)
    assert result.exit_code == 1
    assert rejected(result) == {3: "meter serial 'S-1' is given to account '1' on line 2"}


def test_a_repeated_line_is_harmless(app: Flask, tmp_path: Path, engine: Engine) -> None:
    row = "1,597904,a,s,S-1,heat,,4,3,,"
    result = run_import(app, tmp_path, f"{HEADER}\n{row}\n{row}\n")
    assert result.exit_code == 0, result.output
    meters = snapshot(engine)["meters"]
    assert isinstance(meters, dict) and list(meters) == ["S-1"]


def test_the_phone_set_is_the_union_over_the_accounts_rows(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    body = (
        f"{HEADER}\n1,597904,a,s,S-1,heat,,4,3,,\n2,,b,s,S-2,heat,,4,3,,\n"
        '1,"597905, 597904",a,s,S-3,heat,,4,3,,\n'
    )
    assert run_import(app, tmp_path, body).exit_code == 0
    with Session(engine) as db:
        phones = db.scalars(select(Phone.e164).order_by(Phone.e164)).all()
    assert phones == ["+78172597904", "+78172597905"]


def test_it_reads_excel_files_semicolons_bom_and_windows_1251(
    app: Flask, tmp_path: Path, engine: Engine
) -> None:
    text = (
        HEADER.replace(",", ";")
        + '\r\n1001;"597904, 59-79-05";ул. Ленина, 1;ВТС;HW-1;ГВС;;5;3;31.01.2030;кухня\r\n'
    )
    for data in (("\ufeff" + text).encode(), text.encode("cp1251")):
        result = run_import(app, tmp_path, data)
        assert result.exit_code == 0, result.output
        accounts = snapshot(engine)["accounts"]
        assert accounts == {"1001": ("ул. Ленина, 1", "ВТС", ["+78172597904", "+78172597905"])}
    assert "read as Windows-1251" in result.stderr


def test_it_refuses_a_non_utf8_file_when_told_it_is_utf8(app: Flask, tmp_path: Path) -> None:
    result = run_import(app, tmp_path, GOOD.encode("cp1251"), "--encoding", "utf-8")
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.stderr


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "the file is empty"),
        ("account,phones,address\n1,,a\n", "missing columns: supplier, meter_serial"),
        (HEADER.replace("meter_kind", "kind") + "\n", "unknown columns: 'kind'"),
        ("meter_serial,taken_at,value\nA,2026-01-01,1\n", "missing columns: account, phones"),
    ],
)
def test_a_wrong_header_stops_the_import_with_exit_2(
    app: Flask, tmp_path: Path, engine: Engine, body: str, message: str
) -> None:
    result = run_import(app, tmp_path, body)
    assert result.exit_code == 2
    assert message in result.stderr
    assert snapshot(engine) == {"accounts": {}, "meters": {}}


def test_a_dry_run_reports_and_writes_nothing(app: Flask, tmp_path: Path, engine: Engine) -> None:
    result = run_import(app, tmp_path, GOOD, "--dry-run")
    assert result.exit_code == 0
    assert "dry run, nothing written: rows: 3, imported: 3" in result.stdout
    assert snapshot(engine) == {"accounts": {}, "meters": {}}


def test_a_header_only_file_imports_nothing_and_succeeds(app: Flask, tmp_path: Path) -> None:
    result = run_import(app, tmp_path, HEADER + "\n")
    assert result.exit_code == 0
    assert "rows: 0, imported: 0" in result.stdout


def test_rows_written_meanwhile_by_someone_else_are_retried_one_account_at_a_time(
    app: Flask, tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot is stale: account 1001 and meter CW-2 appeared after it was taken."""
    from ivr.billing import meters_import
    from storage.accounts import Directory

    assert run_import(app, tmp_path, GOOD).exit_code == 0
    real_load = Directory.load
    calls = []

    def stale_first(session: Session) -> Directory:
        calls.append(1)
        return Directory() if len(calls) == 1 else real_load(session)

    monkeypatch.setattr(meters_import.Directory, "load", stale_first)
    body = f"""{HEADER}
1001,597904,ул. Ленина 1,ВТС,HW-1,hot_water,,7,3,,кухня
1009,,ул. Новая 9,ВТС,CW-2,cold_water,,5,3,,
1010,,ул. Новая 10,ВТС,CW-10,cold_water,,5,3,,
"""
    result = run_import(app, tmp_path, body)
    assert result.exit_code == 1, result.output
    assert rejected(result) == {3: "account '1009': meter serial 'CW-2' belongs to account '1002'"}
    assert "rows: 3, imported: 2" in result.stdout
    state = snapshot(engine)
    accounts, meters = state["accounts"], state["meters"]
    assert isinstance(accounts, dict) and isinstance(meters, dict)
    assert sorted(accounts) == ["1001", "1002", "1010"]
    assert meters["HW-1"][3] == 7 and meters["CW-2"][0] == "1002"


def test_statistics_are_refreshed_only_for_our_tables(session: Session) -> None:
    from storage.accounts import refresh_statistics

    refresh_statistics(session, ["accounts", "meters", "phones", "readings"])
    if session.get_bind().dialect.name == "postgresql":
        with pytest.raises(ValueError, match="not a table of ours"):
            refresh_statistics(session, ["accounts; DROP TABLE calls"])

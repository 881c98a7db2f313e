"""Hostile billing files: every bad row is refused with its line number, nothing crashes,
and `--dry-run` says the same as a real run."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ivr.billing.fields import MAX_PHONES
from storage.models import Account, Reading
from tests.integration.test_import_readings import METERS, rejected, run

HEADER = "meter_serial,taken_at,value\n"
HOSTILE_TIMES = {
    2: "0001-01-01T00:00:00+05:00",  # OverflowError once converted to UTC
    3: "9999-12-31T23:59:00-12:00",
    4: "0999-06-15",  # stored as period "999-06" before
    5: "15.06.1899",
    6: "2101-01-01",
}


@pytest.fixture
def meters(app: Flask, tmp_path: Path) -> None:
    result = run(app, tmp_path, "meters", METERS)
    assert result.exit_code == 0, result.output


def _readings_file() -> str:
    lines = [f"HW-1,{moment},100" for moment in HOSTILE_TIMES.values()]
    return HEADER + "\n".join(lines) + "\nHW-1,2026-01-23,101\n"


@pytest.mark.usefixtures("meters")
@pytest.mark.parametrize("dry_run", [True, False])
def test_out_of_range_timestamps_are_refused_line_by_line(
    app: Flask, tmp_path: Path, engine: Engine, dry_run: bool
) -> None:
    path = tmp_path / "readings.csv"
    path.write_text(_readings_file(), encoding="utf-8")
    args = ["import", "readings", str(path)] + (["--dry-run"] if dry_run else [])
    result = app.test_cli_runner().invoke(args=args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    reasons = rejected(result)
    assert sorted(reasons) == sorted(HOSTILE_TIMES)
    assert all("the year must be from 1990 to 2100" in reasons[n] for n in HOSTILE_TIMES)
    assert "rows: 6, imported: 1" in result.stdout
    with Session(engine) as db:
        periods = set(db.scalars(select(Reading.period)))
    assert periods == (set() if dry_run else {"2026-01"})


def _meters_file(account: str, phones: str = "597904", verification: str = "") -> str:
    head = METERS.splitlines()[0]
    row = f"{account},{phones},ул. Ленина 1,ВТС,S-1,hot_water,,5,3,{verification},"
    return f"{head}\n{row}\n"


@pytest.mark.parametrize(
    "account",
    ["10/20", "..", "../admin", "a.b", "100?x=1", "#1", "-100", "100-", "a b", "%2F", "лс№5"],
)
def test_an_account_number_that_cannot_name_a_page_is_refused(
    app: Flask, tmp_path: Path, engine: Engine, account: str
) -> None:
    result = run(app, tmp_path, "meters", _meters_file(f'"{account}"'))
    reason = rejected(result)[2]
    assert "letters, digits and hyphens" in reason or "is empty" in reason
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Account)) == 0


@pytest.mark.parametrize("account", ["1001", "0012345", "АБ-100200", "ab12-34-56"])
def test_an_account_number_of_letters_digits_and_hyphens_opens_its_page(
    app: Flask, tmp_path: Path, account: str
) -> None:
    from tests.browser.seed import operator
    from tests.webhooks.test_operator_access import sign_in

    result = run(app, tmp_path, "meters", _meters_file(account))
    assert result.exit_code == 0, result.output
    with app.extensions["meterline"].sessions() as session:
        operator(session, "olga")
    client = app.test_client()
    assert sign_in(client, "olga") == 302
    found = client.get("/operator/accounts", query_string={"q": account})
    assert found.status_code == 302
    page = client.get(found.headers["Location"])
    assert page.status_code == 200 and account in page.text


def test_a_phones_field_of_thousands_of_numbers_is_refused(app: Flask, tmp_path: Path) -> None:
    many = ";".join(f"+7921{n:07d}" for n in range(9000))
    result = run(app, tmp_path, "meters", _meters_file("1001", f'"{many}"'))
    assert f"at most {MAX_PHONES} per account" in rejected(result)[2]
    ten = ";".join(f"+7921{n:07d}" for n in range(MAX_PHONES))
    assert run(app, tmp_path, "meters", _meters_file("1001", f'"{ten}"')).exit_code == 0


@pytest.mark.parametrize("due", ["0999-06-15", "01.01.0001", "31.12.9999"])
def test_a_verification_date_in_an_absurd_year_is_refused(
    app: Flask, tmp_path: Path, due: str
) -> None:
    result = run(app, tmp_path, "meters", _meters_file("1001", verification=due))
    assert "the year must be from 1990 to 2100" in rejected(result)[2]

"""An outsider guessing passwords slows down only their own attempts, learns nothing about
which logins exist, and cannot keep a real operator out; sign-out really ends a session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ivr.services import Services
from tests.browser.seed import PASSWORD, operator
from tests.webhooks.test_operator_access import token

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
OUTSIDER = "203.0.113.9"
OFFICE = "198.51.100.20"


@pytest.fixture
def svc(app: Flask) -> Services:
    """The app's services, its clock at NOW, with operators olga and boss (admin)."""
    services: Services = app.extensions["meterline"]
    services.clock = lambda: NOW
    with services.sessions() as session:
        operator(session, "olga")
        operator(session, "boss", admin=True)
    return services


def client_at(app: Flask, address: str) -> FlaskClient:
    """A browser at `address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def attempt(client: FlaskClient, login: str, password: str = PASSWORD) -> tuple[int, str]:
    """Post the sign-in form; the status and the message shown."""
    data = {"login": login, "password": password, "csrf_token": token(client)}
    answer = client.post("/operator/sign-in", data=data)
    flashed = answer.text.split('class="flash', 1)[-1][:200] if answer.status_code != 302 else ""
    return answer.status_code, flashed


def test_failures_from_one_address_block_that_address_only(app: Flask, svc: Services) -> None:
    outsider = client_at(app, OUTSIDER)
    answers = [attempt(outsider, "olga", "wrong guess")[0] for _ in range(5)]
    assert answers == [401, 401, 401, 401, 429]
    assert attempt(outsider, "olga")[0] == 429  # even the right password, from there
    assert attempt(client_at(app, OFFICE), "olga")[0] == 302  # olga at work is not kept out


def test_the_block_doubles_with_each_further_failure_then_ends(app: Flask, svc: Services) -> None:
    outsider = client_at(app, OUTSIDER)
    for _ in range(5):
        attempt(outsider, "olga", "wrong guess")
    svc.clock = lambda: NOW + timedelta(seconds=61)  # the first block: one minute
    assert attempt(outsider, "olga", "wrong guess")[0] == 429  # the sixth: two minutes
    svc.clock = lambda: NOW + timedelta(seconds=61 + 110)
    assert attempt(outsider, "olga")[0] == 429
    svc.clock = lambda: NOW + timedelta(seconds=61 + 125)
    assert attempt(outsider, "olga")[0] == 302


def test_unknown_and_known_logins_answer_alike_every_time(app: Flask, svc: Services) -> None:
    known, unknown = client_at(app, OUTSIDER), client_at(app, "192.0.2.44")
    for _ in range(7):
        one = attempt(known, "olga", "wrong guess")
        two = attempt(unknown, "nobody-here", "wrong guess")
        assert one == two


@pytest.mark.parametrize("login", [" olga", "olga\t", "OLGA", "olga\u00a0", "оlga"])
def test_only_the_exact_login_signs_in(app: Flask, svc: Services, login: str) -> None:
    status, message = attempt(client_at(app, OFFICE), login)
    assert status == 401 and "Неверный логин или пароль" in message


def test_variants_of_a_login_count_as_one_for_the_throttle(app: Flask, svc: Services) -> None:
    outsider = client_at(app, OUTSIDER)
    answers = [attempt(outsider, v, "x" * 9)[0] for v in (" olga", "olga\t", "OLGA", "Olga ")]
    assert answers == [401] * 4
    assert attempt(outsider, "olga", "wrong guess")[0] == 429


def test_twenty_failures_from_one_address_block_it_for_every_login(
    app: Flask, svc: Services
) -> None:
    sprayer = client_at(app, OUTSIDER)
    for n in range(20):
        attempt(sprayer, f"guess{n // 4}", "wrong guess")
    assert attempt(sprayer, "boss")[0] == 429
    assert attempt(client_at(app, OFFICE), "boss")[0] == 302


def test_an_admin_sees_the_block_and_lifts_it(app: Flask, svc: Services) -> None:
    outsider = client_at(app, OUTSIDER)
    for _ in range(5):
        attempt(outsider, "olga", "wrong guess")
    boss = client_at(app, OFFICE)
    assert attempt(boss, "boss")[0] == 302
    page = boss.get("/operator/admin/operators").text
    assert "вход заблокирован до 10:01" in page
    olga_id = _operator_id(svc, "olga")
    csrf = token(boss, "/operator/")
    lifted = boss.post(f"/operator/admin/operators/{olga_id}/unlock", data={"csrf_token": csrf})
    assert lifted.status_code == 302
    assert "вход заблокирован" not in boss.get("/operator/admin/operators").text
    assert attempt(client_at(app, OUTSIDER), "olga")[0] == 302


def _operator_id(svc: Services, login: str) -> int:
    from sqlalchemy import select

    from storage.models import Operator

    with svc.sessions() as session:
        found = session.scalar(select(Operator.id).where(Operator.login == login))
    assert found is not None
    return found


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    other = app.test_client()
    other.set_cookie("session", value)
    return other


def test_a_cookie_copied_before_sign_out_no_longer_works(app: Flask, svc: Services) -> None:
    olga = client_at(app, OFFICE)
    assert attempt(olga, "olga")[0] == 302
    copied = _cookie(olga)
    assert _with_cookie(app, copied).get("/operator/").status_code == 200
    olga.post("/operator/sign-out", data={"csrf_token": token(olga, "/operator/")})
    assert _with_cookie(app, copied).get("/operator/").status_code == 302
    assert attempt(olga, "olga")[0] == 302  # signing in again works


def test_an_admin_can_end_an_operators_sessions(app: Flask, svc: Services) -> None:
    olga, boss = client_at(app, OFFICE), client_at(app, OFFICE)
    attempt(olga, "olga")
    attempt(boss, "boss")
    assert olga.get("/operator/").status_code == 200
    url = f"/operator/admin/operators/{_operator_id(svc, 'olga')}/sign-out"
    assert boss.post(url, data={"csrf_token": token(boss, "/operator/")}).status_code == 302
    assert olga.get("/operator/").status_code == 302
    assert boss.get("/operator/").status_code == 200

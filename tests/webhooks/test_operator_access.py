"""Who may open the operator view: sign-in, roles, CSRF, lock-out, cookies, the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ivr.services import Services
from storage.models import AuditEntry, Flag, Operator
from tests.browser.seed import PASSWORD, operator, seed
from tests.conftest import TEST_TOKEN
from tests.support.twilio import TwilioClient

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
DUMMY_ARGS = {"call_id": 1, "flag_id": 1, "operator_id": 1, "number": "1", "name": "x.wav"}


def svc(app: Flask) -> Services:
    services: Services = app.extensions["meterline"]
    return services


def token(client: FlaskClient, url: str = "/operator/sign-in") -> str:
    """The CSRF token of the client's session, as a page carries it."""
    page = client.get(url)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


def sign_in(client: FlaskClient, login: str, password: str = PASSWORD) -> int:
    """Post the sign-in form; the status code."""
    data = {"login": login, "password": password, "csrf_token": token(client)}
    return client.post("/operator/sign-in", data=data).status_code


def operator_rules(app: Flask) -> list[tuple[str, str]]:
    """(url, method) for every operator route but sign-in and static files."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/operator") or rule.endpoint in (
            "operator.static",
            "operator.sign_in_page",
        ):
            continue
        url = rule.build({k: DUMMY_ARGS[k] for k in rule.arguments}, append_unknown=False)
        assert url is not None
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((url[1], method))
    return found


@pytest.fixture
def clocked(app: Flask) -> Flask:
    svc(app).clock = lambda: NOW
    return app


def test_csrf_is_on_even_though_the_app_is_testing(app: Flask) -> None:
    assert app.config["TESTING"] and app.config["WTF_CSRF_ENABLED"]


def test_every_operator_page_needs_sign_in(app: Flask) -> None:
    client = app.test_client()
    rules = operator_rules(app)
    assert len(rules) >= 12
    for url, method in rules:
        response = client.open(url, method=method)
        assert response.status_code in (302, 401), (method, url, response.status_code)
        if response.status_code == 302:
            assert "/operator/sign-in" in response.headers["Location"], url


def test_admin_pages_need_the_admin_role(app: Flask) -> None:
    with svc(app).sessions() as session:
        operator(session, "olga")
        operator(session, "boss", admin=True)
    client = app.test_client()
    assert sign_in(client, "olga") == 302
    csrf = token(client, "/operator/")
    admin_rules = [(u, m) for u, m in operator_rules(app) if u.startswith("/operator/admin")]
    assert len(admin_rules) >= 4
    for url, method in admin_rules:
        response = client.open(url, method=method, data={"csrf_token": csrf})
        assert response.status_code == 403, (method, url)
    boss = app.test_client()
    assert sign_in(boss, "boss") == 302
    page = boss.get("/operator/admin/operators")
    assert page.status_code == 200 and "olga" in page.text


def test_a_form_without_its_csrf_token_is_refused(app: Flask) -> None:
    with svc(app).sessions() as session:
        seeded = seed(session, NOW)
        operator(session, "olga")
    client = app.test_client()
    refused = client.post("/operator/sign-in", data={"login": "olga", "password": PASSWORD})
    assert refused.status_code == 400
    assert sign_in(client, "olga") == 302
    url = f"/operator/flags/{seeded.flag_id}/decision"
    response = client.post(url, data={"action": "accept"})
    assert response.status_code == 400 and "Форма устарела" in response.text
    forged = client.post(url, data={"action": "accept", "csrf_token": "forged"})
    assert forged.status_code == 400
    with svc(app).sessions() as session:
        assert session.get(Flag, seeded.flag_id).status == "open"  # type: ignore[union-attr]
        assert session.scalars(select(AuditEntry).where(AuditEntry.action == "accept")).all() == []


def test_twilio_webhooks_need_no_csrf_token(app: Flask) -> None:
    twilio = TwilioClient(app.test_client(), TEST_TOKEN)
    response = twilio.post("/voice/status", CallStatus="completed")
    assert response.status_code == 200


def test_unknown_login_and_wrong_password_read_the_same(app: Flask) -> None:
    with svc(app).sessions() as session:
        operator(session, "olga")
    client = app.test_client()
    data = {"password": "nope-nope", "csrf_token": token(client)}
    one = client.post("/operator/sign-in", data={**data, "login": "olga"})
    two = client.post("/operator/sign-in", data={**data, "login": "nobody"})
    assert one.status_code == two.status_code == 401
    assert "Неверный логин или пароль" in one.text and "Неверный логин или пароль" in two.text


def test_the_session_cookie_is_http_only_same_site_and_secure_over_https(app: Flask) -> None:
    with svc(app).sessions() as session:
        operator(session, "olga")
    client = app.test_client()
    data = {"login": "olga", "password": PASSWORD, "csrf_token": token(client)}
    response = client.post("/operator/sign-in", data=data)
    cookie = next(v for k, v in response.headers.items() if k == "Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_the_cookie_is_not_secure_when_served_over_plain_http(
    app_config: dict[str, str], clean_db: object
) -> None:
    from ivr import create_app

    app = create_app({**app_config, "METERLINE_PUBLIC_URL": "http://127.0.0.1:5000"})
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    svc(app).engine.dispose()


def test_sign_out_ends_the_session(app: Flask) -> None:
    with svc(app).sessions() as session:
        operator(session, "olga")
    client = app.test_client()
    sign_in(client, "olga")
    assert client.get("/operator/").status_code == 200
    out = client.post("/operator/sign-out", data={"csrf_token": token(client, "/operator/")})
    assert out.status_code == 302
    assert client.get("/operator/").status_code == 302


def test_a_deactivated_operator_is_signed_out_and_cannot_sign_in(app: Flask) -> None:
    with svc(app).sessions() as session:
        olga = operator(session, "olga")
        operator(session, "boss", admin=True)
    client, boss = app.test_client(), app.test_client()
    sign_in(client, "olga")
    sign_in(boss, "boss")
    url = f"/operator/admin/operators/{olga}/deactivate"
    assert boss.post(url, data={"csrf_token": token(boss, "/operator/")}).status_code == 302
    assert client.get("/operator/").status_code == 302
    assert sign_in(client, "olga") == 401


def test_a_password_reset_ends_open_sessions(app: Flask) -> None:
    with svc(app).sessions() as session:
        olga = operator(session, "olga")
        operator(session, "boss", admin=True)
    client, boss = app.test_client(), app.test_client()
    sign_in(client, "olga")
    data = {"password": "a brand new one", "csrf_token": token(boss)}
    sign_in(boss, "boss")
    data["csrf_token"] = token(boss, "/operator/")
    assert boss.post(f"/operator/admin/operators/{olga}/password", data=data).status_code == 302
    assert client.get("/operator/").status_code == 302
    assert sign_in(client, "olga", "a brand new one") == 302


def test_an_admin_adds_an_operator_through_the_web(app: Flask) -> None:
    with svc(app).sessions() as session:
        operator(session, "boss", admin=True)
    boss = app.test_client()
    sign_in(boss, "boss")
    data = {"login": "anna", "password": "anna-pass-1", "password2": "anna-pass-1"}
    boss.post("/operator/admin/operators", data={**data, "csrf_token": token(boss, "/operator/")})
    anna = app.test_client()
    assert sign_in(anna, "anna", "anna-pass-1") == 302
    assert anna.get("/operator/admin/operators").status_code == 403


def test_sign_in_does_not_redirect_outside_the_operator_view(app: Flask) -> None:
    with svc(app).sessions() as session:
        operator(session, "olga")
    client = app.test_client()
    data = {"login": "olga", "password": PASSWORD, "csrf_token": token(client)}
    response = client.post("/operator/sign-in", data={**data, "next": "https://evil.example/"})
    assert response.headers["Location"].endswith("/operator/")


def test_operators_add_asks_the_password_twice(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["operators", "add", "anna", "--admin"], input="s3cret-pass\n" * 2)
    assert result.exit_code == 0, result.output
    assert "s3cret-pass" not in result.output
    scripted = runner.invoke(
        args=["operators", "add", "ivan", "--password-stdin"], input="ivan-pass-1\n"
    )
    assert scripted.exit_code == 0, scripted.output
    duplicate = runner.invoke(
        args=["operators", "add", "ivan", "--password-stdin"], input="ivan-pass-1\n"
    )
    assert duplicate.exit_code != 0 and "уже есть" in duplicate.output
    client = app.test_client()
    assert sign_in(client, "ivan", "ivan-pass-1") == 302
    with svc(app).sessions() as session:
        anna = session.scalar(select(Operator).where(Operator.login == "anna"))
        assert anna is not None and anna.is_admin

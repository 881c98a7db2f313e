"""The review queue, a call's page and the decisions operators take there."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from ivr.services import Services
from storage.ledger import period_of
from storage.models import AuditEntry, Flag, Reading
from tests.browser.seed import ZONE, Seeded, operator, seed
from tests.webhooks.test_operator_access import sign_in, token

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


@pytest.fixture
def seeded(app: Flask) -> Seeded:
    services: Services = app.extensions["meterline"]
    services.clock = lambda: NOW
    with services.sessions() as session:
        done = seed(session, NOW, services.settings.audio_dir)
        operator(session, "olga")
    return done


@pytest.fixture
def client(app: Flask, seeded: Seeded) -> FlaskClient:
    c = app.test_client()
    assert sign_in(c, "olga") == 302
    return c


def decide(client: FlaskClient, flag_id: int, **form: str) -> str:
    """Post a decision with the session's token; the page it ends on."""
    form["csrf_token"] = token(client, "/operator/")
    response = client.post(f"/operator/flags/{flag_id}/decision", data=form, follow_redirects=True)
    assert response.status_code == 200
    return response.text


def once(page: str) -> str:
    """The one-time token of the "Сохранить" form on a checked page."""
    found = re.search(r'name="once" value="([^"]+)"', page)
    assert found, "no Сохранить form on the page"
    return found[1]


def readings(app: Flask, meter_id: int) -> list[Reading]:
    with app.extensions["meterline"].sessions() as session:
        stmt = select(Reading).where(Reading.meter_id == meter_id).order_by(Reading.id)
        return list(session.scalars(stmt))


def audit(app: Flask) -> list[AuditEntry]:
    with app.extensions["meterline"].sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_the_queue_lists_the_flag_with_a_masked_caller_and_both_values(
    client: FlaskClient,
) -> None:
    page = client.get("/operator/").text
    assert "Подозрительный расход" in page
    assert "+7 *** ***-45-67" in page and "+79211234567" not in page
    assert "100200300" in page and "ГВ-7001" in page
    assert re.search(r">190<", page) and re.search(r">133<", page)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("", True),
        ("q=100200300", True),
        ("q=8+921+123-45-67", True),
        ("q=999999", False),
        ("reason=anomalous", True),
        ("reason=below_previous", False),
        ("supplier=Теплосеть", True),
        ("supplier=Водоканал", False),
        ("from=2026-11-24&to=2026-11-24", True),
        ("from=2026-11-25", False),
        ("status=resolved", False),
        ("status=all", True),
    ],
)
def test_the_queue_filters(client: FlaskClient, query: str, found: bool) -> None:
    page = client.get(f"/operator/?{query}").text
    assert ("ГВ-7001" in page) is found, query


def test_the_queue_counts_flags_per_reason(client: FlaskClient) -> None:
    page = client.get("/operator/").text
    assert re.search(r"Подозрительный расход <b>1</b>", page)


def test_the_call_page_shows_caller_timeline_audio_and_chart(
    client: FlaskClient, seeded: Seeded
) -> None:
    page = client.get(f"/operator/calls/{seeded.call_id}").text
    assert "+79211234567" in page
    assert "сто девяносто" in page and "уверенность 62%" in page
    assert f'src="/operator/audio/{seeded.audio}"' in page and "<audio controls" in page
    assert '<svg viewBox="0 0 360 120"' in page and 'class="bar flagged"' in page
    assert "Принять как есть" in page and "Проверить" in page


def test_recordings_are_served_from_the_audio_directory_only(
    client: FlaskClient, seeded: Seeded, app: Flask, tmp_path: Path
) -> None:
    with client.get(f"/operator/audio/{seeded.audio}") as ok:
        assert ok.status_code == 200 and ok.data[:4] == b"RIFF"
    (tmp_path / "secret.txt").write_text("secret")
    for bad in ("../secret.txt", "%2e%2e/secret.txt", "/etc/passwd", "nothing.wav"):
        with client.get(f"/operator/audio/{bad}", follow_redirects=True) as response:
            assert response.status_code == 404, bad
    assert app.test_client().get(f"/operator/audio/{seeded.audio}").status_code == 302


def test_a_flag_opens_its_call_page(client: FlaskClient, seeded: Seeded) -> None:
    response = client.get(f"/operator/flags/{seeded.flag_id}")
    assert response.headers["Location"].endswith(
        f"/operator/calls/{seeded.call_id}#flag-{seeded.flag_id}"
    )


def test_accepting_as_is_accepts_the_reading_and_audits(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    page = decide(client, seeded.flag_id, action="accept")
    assert "Показание принято" in page and "Принято как есть" in page
    flagged = next(r for r in readings(app, seeded.meter_id) if r.id == seeded.reading_id)
    assert flagged.status == "accepted"
    entry = audit(app)[-1]
    assert entry.action == "accept" and entry.flag_id == seeded.flag_id
    assert json.loads(entry.before)["status"] == "flagged"
    assert json.loads(entry.after)["status"] == "accepted"
    with app.extensions["meterline"].sessions() as session:
        flag = session.get(Flag, seeded.flag_id)
        assert flag is not None and flag.status == "resolved" and flag.resolution == "accepted"
        assert flag.resolved_by_id is not None and flag.resolved_at is not None


@pytest.mark.parametrize(
    ("value", "consequence"),
    [
        ("120", "ниже предыдущего 133"),
        ("400", "расход за месяц"),
        ("136,5", "проверка пройдена, расход 3,5 м³"),
        ("1234567", "больше разрядов"),
    ],
)
def test_checking_a_correction_shows_its_consequence_and_stores_nothing(
    client: FlaskClient, seeded: Seeded, app: Flask, value: str, consequence: str
) -> None:
    before = readings(app, seeded.meter_id)
    page = decide(client, seeded.flag_id, action="check", value=value)
    assert consequence in page
    assert ("Сохранить" in page) is (consequence != "больше разрядов")
    assert len(readings(app, seeded.meter_id)) == len(before)
    assert all(e.action == "operator_add" for e in audit(app))


def test_correcting_stores_a_new_reading_and_keeps_the_old_one(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    checked = decide(client, seeded.flag_id, action="check", value="136,5")
    form = {"action": "correct", "value": "136.5", "checked": "136.5", "once": once(checked)}
    page = decide(client, seeded.flag_id, **form)
    assert "Значение исправлено" in page
    rows = readings(app, seeded.meter_id)
    old = next(r for r in rows if r.id == seeded.reading_id)
    new = rows[-1]
    assert new.value == Decimal("136.5") and new.source == "operator" and new.status == "accepted"
    assert old.replaced_by_id == new.id and old.value == Decimal(190)
    assert new.period == old.period and new.call_id == seeded.call_id
    entry = audit(app)[-1]
    assert entry.action == "correct" and entry.reading_id == new.id
    assert json.loads(entry.before)["value"] == "190"
    assert json.loads(entry.after)["value"] == "136.5"
    assert "Значение исправлено" in page and "было: значение 190" in page
    assert "заменено на <b>136,5</b>" in page and "olga" in page


def test_a_correction_is_saved_only_after_its_check(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    count = len(readings(app, seeded.meter_id))
    page = decide(client, seeded.flag_id, action="correct", value="136", checked="135")
    assert "Сохранить" in page and len(readings(app, seeded.meter_id)) == count


def test_rejecting_needs_a_reason_and_marks_the_reading_rejected(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    page = decide(client, seeded.flag_id, action="reject", note="")
    assert "Укажите причину отказа" in page
    decide(client, seeded.flag_id, action="reject", note="абонент ошибся счётчиком")
    flagged = next(r for r in readings(app, seeded.meter_id) if r.id == seeded.reading_id)
    assert flagged.status == "rejected"
    entry = audit(app)[-1]
    assert entry.action == "reject" and entry.note == "абонент ошибся счётчиком"


def test_call_back_keeps_the_flag_open_with_its_note(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    decide(client, seeded.flag_id, action="call_back", note="уточнить показание вечером")
    with app.extensions["meterline"].sessions() as session:
        flag = session.get(Flag, seeded.flag_id)
        assert flag is not None and flag.status == "open"
        assert flag.note == "уточнить показание вечером"
    assert audit(app)[-1].action == "call_back"
    assert "уточнить показание вечером" in client.get("/operator/").text


def test_a_resolved_flag_takes_no_second_decision(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    decide(client, seeded.flag_id, action="accept")
    page = decide(client, seeded.flag_id, action="reject", note="поздно")
    assert "уже решён" in page
    assert [e.action for e in audit(app)].count("reject") == 0


def test_manual_entry_checks_then_stores_an_operator_reading(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    assert (
        client.get("/operator/accounts?q=8-921-123-45-67")
        .headers["Location"]
        .endswith("/operator/accounts/100200300")
    )
    form = {"meter_id": str(seeded.heat_meter_id), "value": "22,5", "action": "check"}
    form["csrf_token"] = token(client, "/operator/accounts/100200300")
    page = client.post("/operator/accounts/100200300/readings", data=form).text
    assert "проверка пройдена" in page and "Сохранить" in page
    form.update(action="save", value="22.5", checked="22.5", once=once(page))
    done = client.post("/operator/accounts/100200300/readings", data=form, follow_redirects=True)
    assert "сохранено" in done.text and "Ручной ввод" in done.text
    new = readings(app, seeded.heat_meter_id)[-1]
    assert new.value == Decimal("22.5") and new.source == "operator"
    assert new.period == period_of(NOW, ZONE, (23, 25))


def test_manual_entry_refuses_a_meter_of_another_account(
    client: FlaskClient, seeded: Seeded
) -> None:
    form = {"meter_id": "999999", "value": "1", "action": "check"}
    form["csrf_token"] = token(client, "/operator/accounts/100200300")
    page = client.post(
        "/operator/accounts/100200300/readings", data=form, follow_redirects=True
    ).text
    assert "Нет такого счётчика" in page


def test_the_dashboard_counts_today_and_the_period(client: FlaskClient) -> None:
    page = client.get("/operator/dashboard").text
    assert "Сегодня" in page and "Период: ноябрь 2026" in page
    assert "Подозрительный расход" in page and "90 с" in page


def test_a_flag_raised_outside_any_call_has_its_own_page(
    client: FlaskClient, seeded: Seeded, app: Flask
) -> None:
    with app.extensions["meterline"].sessions() as session:
        flag = Flag(reason="unknown_caller", detail="номер не найден", account_id=seeded.account_id)
        session.add(flag)
        session.commit()
        flag_id = flag.id
    page = client.get(f"/operator/flags/{flag_id}")
    assert page.status_code == 200 and "Случай без звонка" in page.text
    assert "Неизвестный номер" in page.text and "ГВ-7001" in page.text
    done = decide(client, flag_id, action="accept")
    assert "Случай закрыт" in done
    assert audit(app)[-1].action == "close"

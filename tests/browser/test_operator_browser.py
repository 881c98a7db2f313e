"""The operator view in real headless Chromium against a real server process."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.db import make_sessionmaker
from tests.browser.seed import ACCOUNT, PASSWORD, ZONE, Seeded, seed
from tests.support.server import Server, running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WINDOW = (1, 31)  # the test server takes readings every day

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason=f"{CHROMIUM} is not installed (apt-get install chromium); CI requires it",
    ),
]


@pytest.fixture
def server(clean_db: Engine, database_url: str, tmp_path: Path) -> Iterator[Server]:
    audio_dir = tmp_path / "audio"
    extra = {"METERLINE_AUDIO_DIR": str(audio_dir), "METERLINE_WINDOW": "1-31"}
    with running_server(database_url, extra=extra, workers=1) as srv:
        yield srv


@pytest.fixture
def seeded(server: Server, clean_db: Engine) -> Seeded:
    audio_dir = Path(server.env["METERLINE_AUDIO_DIR"])
    with make_sessionmaker(clean_db)() as session:
        done = seed(session, datetime.now(UTC), audio_dir, window=WINDOW)
    server.cli("operators", "add", "olga", "--password-stdin", input=PASSWORD + "\n")
    return done


def screenshots() -> Path | None:
    """Where to keep screenshots for a human to look at, if asked (METERLINE_SCREENSHOTS)."""
    target = os.environ.get("METERLINE_SCREENSHOTS")
    if not target:
        return None
    Path(target).mkdir(parents=True, exist_ok=True)
    return Path(target)


def test_an_operator_corrects_a_flagged_value_and_the_export_shows_it(
    server: Server, seeded: Seeded
) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/operator/")
            expect(page.get_by_role("heading", name="Вход для операторов")).to_be_visible()
            page.get_by_label("Логин").fill("olga")
            page.get_by_label("Пароль").fill(PASSWORD)
            page.get_by_role("button", name="Войти").click()

            expect(page.get_by_role("heading", name="Очередь проверки")).to_be_visible()
            row = page.locator("table.queue tbody tr", has_text=ACCOUNT)
            expect(row).to_contain_text("+7 *** ***-45-67")
            expect(row).to_contain_text("Подозрительный расход")
            if shots:
                page.screenshot(path=str(shots / "queue.png"), full_page=True)
            row.get_by_role("link", name="Открыть").click()

            expect(page.get_by_role("heading", name=f"Звонок № {seeded.call_id}")).to_be_visible()
            expect(page.locator("svg.consumption").first).to_be_visible()
            expect(page.locator("svg.consumption .bar.flagged")).to_have_count(1)
            audio = page.locator("audio[controls]").first
            expect(audio).to_be_attached()
            src = audio.get_attribute("src")
            assert src and src.startswith("/operator/audio/")
            recording = page.request.get(server.url + src)
            assert recording.status == 200 and recording.body()[:4] == b"RIFF"
            if shots:
                page.screenshot(path=str(shots / "call.png"), full_page=True)

            flag = page.locator(f"#flag-{seeded.flag_id}")
            flag.get_by_label("Верное значение").fill("136,5")
            flag.get_by_role("button", name="Проверить").click()
            expect(page.locator(f"#flag-{seeded.flag_id} .check")).to_contain_text(
                "проверка пройдена"
            )
            if shots:
                page.screenshot(path=str(shots / "check.png"), full_page=True)
            page.locator(f"#flag-{seeded.flag_id}").get_by_role("button", name="Сохранить").click()

            expect(page.locator(".flash.ok")).to_contain_text("Значение исправлено")
            expect(page.locator("#audit")).to_contain_text("Значение исправлено")
            expect(page.locator("#audit")).to_contain_text("olga")
            expect(page.locator("#audit")).to_contain_text("было: значение 190")
            expect(page.locator("#audit")).to_contain_text("стало: значение 136,5, статус принято")
            if shots:
                page.screenshot(path=str(shots / "after.png"), full_page=True)
        finally:
            browser.close()

    period = datetime.now(ZONE).strftime("%Y-%m")
    exported = server.cli("export", "readings", "--period", period)
    rows = [r for r in csv.reader(io.StringIO(exported)) if any("ГВ-7001" in c for c in r)]
    assert len(rows) == 1, exported
    assert any(c in ("136.5", "136,5", "136.500", "136,500") for c in rows[0]), rows[0]


PHONE = {"width": 390, "height": 844}


def add_dropped_call_words(clean_db: Engine, seeded: Seeded) -> None:
    """What the real flow writes for a dropped call: a status event, a long note, decimals."""
    from callflows.flow import on_call_ended
    from callflows.model import CallEnded
    from callflows.state import CallState
    from storage.models import CallEvent, Flag

    state = CallState(step="confirm")
    _, actions = on_call_ended(state, CallEnded(status="completed", now=datetime.now(UTC)))
    detail = next(a.detail for a in actions if hasattr(a, "detail"))
    with make_sessionmaker(clean_db)() as session:
        at = datetime.now(UTC)
        session.add_all(
            [
                CallEvent(
                    call_id=seeded.call_id, at=at, seq=10, kind="decision",
                    text="расход 163.9 с прошлого показания 25.11: 54.633 в месяц при пределе "
                    "5.956; значение передано оператору на проверку вместе с записью голоса",
                ),
                CallEvent(call_id=seeded.call_id, at=at, seq=11, kind="status", text="completed"),
                Flag(reason="dropped_call", detail=detail, call_id=seeded.call_id,
                     account_id=seeded.account_id, created_at=at),
            ]
        )  # fmt: skip
        session.commit()


def fits(page: object, selector: str, width: int) -> bool:
    """Whether every element matching `selector` lies inside the viewport's width."""
    boxes = page.eval_on_selector_all(  # type: ignore[attr-defined]
        selector, "els => els.map(e => { const r = e.getBoundingClientRect(); return r.right; })"
    )
    return bool(boxes) and all(right <= width + 0.5 for right in boxes)


def test_the_queue_and_a_call_read_well_on_a_phone(
    server: Server, seeded: Seeded, clean_db: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    add_dropped_call_words(clean_db, seeded)
    shots = screenshots() or tmp_path
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE, device_scale_factor=1)
            page.goto(server.url + "/operator/")
            notice = page.locator(".flash")
            expect(notice).to_have_text("Войдите, чтобы продолжить.")
            assert "error" not in (notice.get_attribute("class") or "")
            page.get_by_label("Логин").fill("olga")
            page.get_by_label("Пароль").fill(PASSWORD)
            page.get_by_role("button", name="Войти").click()

            expect(page.get_by_role("heading", name="Очередь проверки")).to_be_visible()
            header = page.locator("header.top").bounding_box()
            assert header is not None and header["height"] <= 90, header
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            row = page.locator("table.queue tbody tr", has_text="Подозрительный расход")
            expect(row).to_contain_text("+7 *** ***-45-67")
            expect(row).to_contain_text("190")
            assert fits(page, "table.queue td", PHONE["width"])
            assert fits(page, "table.queue a.button", PHONE["width"])
            page.screenshot(path=str(shots / "phone-queue.png"), full_page=True)
            row.get_by_role("link", name="Открыть").click()

            expect(page.get_by_role("heading", name=f"Звонок № {seeded.call_id}")).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert fits(page, ".timeline li .text", PHONE["width"])
            assert fits(page, "table.readings td", PHONE["width"])
            body = page.locator("main").inner_text()
            for english in ("completed", "confirm", "читаем обратно", "№74"):
                assert english not in body
            assert "на шаге «подтверждение показания» (абонент положил трубку)" in body
            assert "при пределе 5,956" in body and "25,11" in body
            expect(page.locator(".timeline li.status .text")).to_have_text("абонент положил трубку")
            page.screenshot(path=str(shots / "phone-call.png"))  # the first screen
            timeline = page.locator("section.card", has_text="Ход звонка")
            timeline.screenshot(path=str(shots / "phone-timeline.png"))
            page.locator(".card.meter").first.screenshot(path=str(shots / "phone-history.png"))
            for name, path in (
                ("dashboard", "/operator/dashboard"),
                ("account", f"/operator/accounts/{ACCOUNT}"),
                ("operators", "/operator/admin/operators"),
            ):
                page.goto(server.url + path)
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
                page.screenshot(path=str(shots / f"phone-{name}.png"), full_page=True)
        finally:
            browser.close()


def test_the_long_timeline_line_wraps_in_its_own_column_on_a_laptop(
    server: Server, seeded: Seeded, clean_db: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    add_dropped_call_words(clean_db, seeded)
    shots = screenshots() or tmp_path
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/operator/")
            page.get_by_label("Логин").fill("olga")
            page.get_by_label("Пароль").fill(PASSWORD)
            page.get_by_role("button", name="Войти").click()
            page.goto(server.url + f"/operator/calls/{seeded.call_id}")
            line = page.locator(".timeline li", has_text="при пределе")
            text = line.locator(".text").bounding_box()
            time_ = line.locator("time").bounding_box()
            assert text is not None and time_ is not None
            assert text["height"] > 25, "the long line should wrap"
            assert text["x"] > time_["x"] + time_["width"], "and stay right of the time"
            page.screenshot(path=str(shots / "laptop-call.png"), full_page=True)
            favicon = page.request.get(server.url + "/favicon.ico")
            assert favicon.status == 200 and b"<svg" in favicon.body()
        finally:
            browser.close()

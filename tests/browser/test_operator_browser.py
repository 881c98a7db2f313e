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

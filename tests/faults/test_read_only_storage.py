"""Read-only storage: `meterline serve` says so and does not start; a running operator view
answers a write that fails with a polite page, never a 500.

Root ignores file permissions, so "read-only" here is SQLite's own read-only mode
(`?mode=ro`), which refuses writes exactly as a read-only file does.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from ivr import create_app
from storage.db import make_engine
from storage.migrate import upgrade
from tests.browser.seed import PASSWORD, operator
from tests.support.server import free_port, server_env
from tests.webhooks.test_operator_access import token


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A migrated SQLite file with one operator, olga."""
    path = tmp_path / "line.db"
    upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        operator(session, "olga")
    engine.dispose()
    return path


def read_only(path: Path) -> str:
    """The URL that opens `path` read-only."""
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def serve(url: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """`meterline serve` on that database; it should refuse to start, so it is not kept."""
    port = free_port()
    env = server_env(url, port, {"METERLINE_AUDIO_DIR": str(tmp_path / "audio"), **extra})
    return subprocess.run(
        [sys.executable, "-m", "ivr", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_to_start_on_a_read_only_database(database: Path, tmp_path: Path) -> None:
    result = serve(read_only(database), tmp_path)
    assert result.returncode != 0
    assert "cannot be written: attempt to write a readonly database" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_when_recordings_cannot_be_written(
    database: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the audio folder should be")
    model = tmp_path / "model"
    model.mkdir()  # speech "configured": only then are recordings written
    result = serve(
        f"sqlite:///{database}",
        tmp_path,
        METERLINE_AUDIO_DIR=str(blocker / "audio"),
        METERLINE_VOSK_MODEL=str(model),
    )
    assert result.returncode != 0
    assert f"METERLINE_AUDIO_DIR {blocker / 'audio'} cannot be written" in result.stderr


@pytest.fixture
def read_only_app(database: Path, app_config: dict[str, str]) -> Iterator[Flask]:
    """The app on the read-only database."""
    app = create_app({**app_config, "METERLINE_DATABASE_URL": read_only(database)})
    app.config["TESTING"] = True
    yield app
    app.extensions["meterline"].engine.dispose()


@pytest.mark.parametrize("password", [PASSWORD, "wrong password"])
def test_sign_in_on_a_read_only_database_gets_a_polite_page(
    read_only_app: Flask, password: str
) -> None:
    client = read_only_app.test_client()
    data = {"login": "olga", "password": password, "csrf_token": token(client)}
    answer = client.post("/operator/sign-in", data=data)
    assert answer.status_code == 503
    assert "база данных сейчас недоступна для записи" in answer.text

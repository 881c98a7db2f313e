"""What `meterline serve` and the commands around it tell a new user, on a real server process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import TEST_TOKEN
from tests.support.server import running_server, server_env
from tests.support.twilio import signed_headers

FIELDS = {"CallSid": "CA" + "7" * 32, "From": "+79211234567", "To": "+78172597904"}


def wait_for(path: Path, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if text in content or time.monotonic() > deadline:
            return content
        time.sleep(0.1)


def test_serve_prints_its_configuration_without_secrets(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with running_server(database_url, workers=1, log_path=log) as server:
        output = wait_for(log, "control socket")
        port = server.url.rsplit(":", 1)[1]
        socket_path = next(
            line.split()[-1] for line in output.splitlines() if "control socket" in line
        )
        assert Path(socket_path).name == f"gunicorn-{port}.ctl"
        assert Path(socket_path).parent.name == "instance"
    for expected in (
        f"public URL       http://127.0.0.1:{port} (webhook signatures are checked against it)",
        "Twilio token     set",
        "secret key       set",
        "window           days 1-31 of the month, outside it: refuse",
        "operator hours   00:00-23:59 Europe/Moscow",
        "speech           off (keys only)",
        "access log       off",
    ):
        assert expected in output, output
    assert TEST_TOKEN not in output and "e2e-secret" not in output
    assert "warning" not in output and "GET /voice/status" not in output


def test_a_public_url_on_another_local_port_is_warned_about_and_logged_when_refused(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    extra = {"METERLINE_PUBLIC_URL": "http://127.0.0.1:5000"}
    with running_server(database_url, extra=extra, workers=1, log_path=log) as server:
        url = server.url + "/voice/incoming"
        response = requests.post(
            url, data=FIELDS, headers=signed_headers(TEST_TOKEN, url, FIELDS), timeout=10
        )
        assert response.status_code == 403
        output = wait_for(log, "checked against")
    port = server.url.rsplit(":", 1)[1]
    assert (
        f"warning: METERLINE_PUBLIC_URL is http://127.0.0.1:5000 but this server listens on "
        f"port {port}" in output
    ), output
    assert "the signature does not match; checked against http://127.0.0.1:5000/voice/incoming" in (
        output
    )


def test_the_access_log_is_off_by_default_and_masks_numbers_when_on(
    database_url: str, tmp_path: Path
) -> None:
    access = tmp_path / "access.log"
    with running_server(database_url, workers=1, args=["--access-log", str(access)]) as server:
        requests.get(server.url + "/operator/accounts?q=%2B79211234567", timeout=10)
        content = wait_for(access, "/operator/accounts")
    assert "GET /operator/accounts?q=+7 *** ***-45-67" in content, content
    assert "9211234567" not in content


def test_commands_on_a_database_without_schema_say_to_run_db_upgrade(tmp_path: Path) -> None:
    env = server_env(f"sqlite:///{tmp_path / 'fresh.db'}", 5000)
    meters = tmp_path / "meters.csv"
    meters.write_text("account,phones\n", encoding="utf-8")
    for args in (
        ["import", "meters", str(meters)],
        ["export", "readings", "--period", "2026-03"],
        ["serve", "--workers", "1"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "ivr", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, (args, result.stderr)
        assert "the database has no meterline tables yet" in result.stderr
        assert "run `meterline db upgrade` first" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_env_file_given_with_e_configures_every_command(tmp_path: Path) -> None:
    db = tmp_path / "from-env-file.db"
    env_file = tmp_path / "meterline.env"
    env_file.write_text(f"METERLINE_DATABASE_URL=sqlite:///{db}\n", encoding="utf-8")
    env = server_env("sqlite:///unused.db", 5000)
    del env["METERLINE_DATABASE_URL"]
    result = subprocess.run(
        [sys.executable, "-m", "ivr", "-e", str(env_file), "db", "upgrade"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert db.exists()

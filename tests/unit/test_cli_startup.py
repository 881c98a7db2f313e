"""`meterline --help` and `meterline speech parse` start without building the app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.commands import COMMANDS, load_command

ROOT = Path(__file__).resolve().parents[2]
# Loaded by the app (database, migrations, server, HTTP client, hashing): none is needed here.
HEAVY = {"sqlalchemy", "alembic", "gunicorn", "requests", "argon2", "twilio", "psycopg"}


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ivr", *args],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = done.stderr.splitlines()
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import")}
    return done, imported


def test_help_lists_every_command_without_importing_the_app(tmp_path: Path) -> None:
    done, imported = _run(tmp_path, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines() if line}
    assert set(COMMANDS) | {"run", "shell", "routes"} <= listed
    assert not imported & HEAVY


def test_speech_parse_answers_without_importing_the_app(tmp_path: Path) -> None:
    done, imported = _run(tmp_path, "speech", "parse", "сто", "двадцать")
    assert (done.returncode, done.stdout.strip()) == (0, "120")
    assert not imported & HEAVY


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_of_the_table_loads_under_its_name(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert command.get_short_help_str(limit=200) == COMMANDS[name][1]

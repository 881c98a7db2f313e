"""The systemd units in docs/deploy.md: valid for systemd, and running real meterline options."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
UNIT_PATH = "/etc/systemd/system/"
METERLINE = "/opt/meterline/venv/bin/meterline"
# A fenced block whose first line names the file it goes to.
BLOCK = re.compile(r"^```\w*\n# (?P<path>/[^\n]+)\n(?P<body>.*?)^```", re.S | re.M)


def units() -> dict[str, str]:
    """Each systemd unit of the guide, by file name."""
    found = {}
    for match in BLOCK.finditer(DEPLOY.read_text(encoding="utf-8")):
        if match["path"].startswith(UNIT_PATH):
            found[match["path"].removeprefix(UNIT_PATH)] = match["body"]
    return found


def test_the_guide_has_units_for_serve_agi_and_backups() -> None:
    assert set(units()) == {
        "meterline@.service",
        "meterline-agi.service",
        "meterline-backup.service",
        "meterline-backup.timer",
    }


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_finds_nothing_to_say_about_the_units(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: a stand-in at the path of our choosing.
    stand_in = tmp_path / "bin" / "meterline"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\n", encoding="utf-8")
    stand_in.chmod(0o755)
    names = []
    for name, body in units().items():
        text = body.replace(METERLINE, str(stand_in))
        (tmp_path / name).write_text(text, encoding="utf-8")
        if name.endswith("@.service"):  # a template is verified through an instance
            name = name.replace("@.", "@8000.")
            (tmp_path / name).write_text(text, encoding="utf-8")
        names.append(str(tmp_path / name))
    result = subprocess.run(
        ["systemd-analyze", "verify", *names], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not complaints, result.stderr


@pytest.mark.parametrize(
    "name", ["meterline@.service", "meterline-agi.service"], ids=["serve", "agi"]
)
def test_each_units_command_line_uses_options_the_command_has(name: str) -> None:
    [exec_start] = [line for line in units()[name].splitlines() if line.startswith("ExecStart=")]
    words = exec_start.removeprefix("ExecStart=").split()
    assert words[0] == METERLINE
    command = words[1]
    options = [word for word in words[2:] if word.startswith("--")]
    result = subprocess.run(
        [sys.executable, "-m", "ivr", command, "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for option in options:
        assert option in result.stdout, (option, result.stdout)


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="no logrotate here")
def test_logrotate_reads_the_guides_configuration_without_an_error(tmp_path: Path) -> None:
    blocks = {m["path"]: m["body"] for m in BLOCK.finditer(DEPLOY.read_text(encoding="utf-8"))}
    config = tmp_path / "meterline"
    config.write_text(blocks["/etc/logrotate.d/meterline"], encoding="utf-8")
    result = subprocess.run(
        ["logrotate", "--debug", "--state", str(tmp_path / "state"), str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "error" not in output.lower(), output

"""`meterline demo` does what the README promises: data, a server, one call that stores readings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from storage.db import make_engine
from storage.models import Reading
from tests.support.server import free_port


def test_the_demo_serves_the_line_and_its_call_stores_three_readings(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "TWILIO_"))}
    env.update(METERLINE_DATABASE_URL=f"sqlite:///{db}", PYTHONUNBUFFERED="1")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr", "demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "meterline call" in line and "+79217654321" in line:
                break
        output = "".join(lines)
        assert "Принято три показания" in output, output
        assert f"http://127.0.0.1:{port}" in output
        # A second caller, from another terminal, with the command the demo printed.
        printed = next(line for line in lines if "+79217654321" in line).split("#")[0].split()
        assert printed[:2] == ["meterline", "call"] and f"http://127.0.0.1:{port}" in printed
        call = subprocess.run(
            [sys.executable, "-m", "ivr", *printed[1:], "--keys", "1 86# 1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert call.returncode == 0, call.stderr
        assert "Принято одно показание." in call.stdout, call.stdout
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stdout:
            process.stdout.close()
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        stored = conn.scalar(
            select(func.count()).select_from(Reading).where(Reading.source == "ivr")
        )
    engine.dispose()
    assert stored == 4

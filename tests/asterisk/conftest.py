"""A real Asterisk (sid chroot), `meterline agi` as a process, prompts rendered for both, and
SIPp to call in. Slow: CI's PostgreSQL pass runs them (`--run-slow`); where the chroot cannot
be built (no root, no debootstrap, no mirror), they skip and say why."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ivr.agi.render import render_all
from ivr.agi.vocabulary import text_pieces
from ivr.prompts import Catalogue
from tests.asterisk.pbx import Pbx, build_chroot, free_port
from tests.support.server import server_env

ADDRESS = "г. Вологда, ул. Ленина, д. 5, кв. 12"  # tests.support.data's default address
OPERATOR_CONTEXT = "Local/busy@operators"  # the test dialplan's busy operator


@pytest.fixture(scope="session")
def asterisk_chroot() -> Path:
    """The cached chroot, built on first use; the Asterisk tests skip if it cannot be."""
    if not os.path.exists("/usr/bin/sipp"):
        pytest.skip("SIPp is not installed (apt-get install sip-tester)")
    try:
        return build_chroot()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"the Asterisk chroot cannot be built here: {exc}")


@pytest.fixture(scope="session")
def pbx(asterisk_chroot: Path) -> Iterator[Pbx]:
    """A running Asterisk on loopback, with every prompt rendered into its sounds folder."""
    rtp = random.randrange(20000, 40000, 1000)
    pbx = Pbx(
        asterisk_chroot, f"meterline-{os.getpid()}", free_port(), free_port(), rtp, free_port()
    )
    pbx.configure()
    pieces = text_pieces(Catalogue.load(), [ADDRESS], ["кухня", "ванная"], [(0, 0), (23, 59)])
    render_all(pieces, pbx.host_home / "sounds", "ulaw", ("espeak-ng", "-v", "ru", "--stdout"))
    subprocess.run(
        ["chroot", str(asterisk_chroot), "chown", "-R", "asterisk:asterisk", pbx.sounds], check=True
    )
    pbx.start()
    try:
        yield pbx
    finally:
        pbx.stop()


@dataclass
class AgiProcess:
    """`meterline agi` running against the test database."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What it has logged so far."""
        return self.log_path.read_text(errors="replace")


def start_agi(database_url: str, pbx: Pbx, port: int, log: Path, **extra: str) -> AgiProcess:
    """Start `meterline agi` on `port` and wait until it accepts connections."""
    env = server_env(
        database_url,
        free_port(),
        {
            "METERLINE_ASTERISK_SOUNDS": pbx.sounds,
            "METERLINE_ASTERISK_OPERATOR": OPERATOR_CONTEXT,
            **extra,
        },
    )
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "ivr", "agi", "--listen", f"127.0.0.1:{port}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    agi = AgiProcess(port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"meterline agi exited: {agi.log()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return agi
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"meterline agi did not listen: {agi.log()[-2000:]}")


@pytest.fixture
def agi(pbx: Pbx, database_url: str, clean_db: Engine, tmp_path: Path) -> Iterator[AgiProcess]:
    """`meterline agi` on the port the test dialplan hands calls to, on an empty database."""
    agi = start_agi(database_url, pbx, pbx.agi_port, tmp_path / "agi.log")
    try:
        yield agi
    finally:
        agi.process.terminate()
        agi.process.wait(15)

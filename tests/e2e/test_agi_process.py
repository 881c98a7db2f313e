"""`meterline agi` as a process: it listens where told, and stopping it closes the calls in
progress as dropped calls (flagged for the operators), never leaves them open."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.models import Call, Flag
from tests.support.data import add_account, add_meter
from tests.support.server import free_port, server_env


def test_stopping_meterline_agi_closes_a_call_in_progress_as_dropped(
    database_url: str, clean_db: Engine, tmp_path: Path
) -> None:
    with Session(clean_db) as session:
        add_meter(session, add_account(session), now=datetime.now(UTC))
        session.commit()
    port = free_port()
    log = tmp_path / "agi.log"
    with log.open("wb") as out:
        agi = subprocess.Popen(
            [sys.executable, "-m", "ivr", "agi", "--listen", f"127.0.0.1:{port}"],
            env=server_env(database_url, free_port()),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                peer = socket.create_connection(("127.0.0.1", port), 1)
                break
            except OSError:
                assert time.monotonic() < deadline and agi.poll() is None, log.read_text()
                time.sleep(0.1)
        with peer, peer.makefile("rb") as commands:
            peer.sendall(b"agi_network_script: meterline\nagi_uniqueid: 1764000009.1\n")
            peer.sendall(b"agi_callerid: +79211234567\n\n")
            assert commands.readline() == b"ANSWER\n"
            peer.sendall(b"200 result=0\n")
            assert commands.readline().startswith(b"STREAM FILE ")  # the caller listens...
            agi.send_signal(signal.SIGTERM)  # ...when the service is stopped
            assert agi.wait(20) == 0
    finally:
        if agi.poll() is None:
            agi.kill()
            agi.wait()
    with Session(clean_db) as session:
        call = session.scalars(select(Call)).one()
        assert call.outcome == "dropped" and call.ended_at is not None
        assert list(session.scalars(select(Flag.reason))) == ["dropped_call"]
    assert "Traceback" not in log.read_text()

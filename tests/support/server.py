"""A real server process (`meterline serve`, gunicorn) on a free loopback port, for e2e tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running server and the environment the CLI needs to talk about it."""

    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def cli(self, *args: str, input: str | None = None, check: bool = True) -> str:
        """Run `meterline ARGS` with the server's environment; returns stdout."""
        result = subprocess.run(
            [sys.executable, "-m", "ivr", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"meterline {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout + result.stderr


def server_env(
    database_url: str, port: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a test server: our token, its own public URL, the window open."""
    from tests.conftest import TEST_TOKEN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "TWILIO_"))}
    env.update(
        {
            "METERLINE_DATABASE_URL": database_url,
            "TWILIO_AUTH_TOKEN": TEST_TOKEN,
            "METERLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "METERLINE_SECRET_KEY": "e2e-secret",
            "METERLINE_WINDOW": "1-31",
            "METERLINE_OPERATOR_HOURS": "00:00-23:59",
            "METERLINE_OPERATOR_NUMBER": "+78172597904",
            "METERLINE_CALLS_PER_HOUR": "1000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    stream_port = free_port()  # the stream server's, used when speech is configured
    env["METERLINE_STREAM_PORT"] = str(stream_port)
    env["METERLINE_STREAM_URL"] = f"ws://127.0.0.1:{stream_port}/voice/stream"
    env.update(extra or {})
    return env


@contextmanager
def running_server(
    database_url: str,
    extra: Mapping[str, str] | None = None,
    workers: int = 2,
    log_path: Path | None = None,
    args: Sequence[str] = (),
) -> Iterator[Server]:
    """Start `meterline serve` and wait until it answers; stop it afterwards.

    Its log goes to a file (`log_path`, for tests that read it, else a temporary one): a
    pipe nobody reads would block the server once a fault has logged 64 KiB of tracebacks.
    """
    port = free_port()
    env = server_env(database_url, port, extra)
    log = log_path.open("w+b") if log_path else tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr", "serve", "--port", str(port), "--workers", str(workers)]
        + list(args),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Server(url=url, env=env, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"server exited with {process.returncode}:\n{err}")
        try:
            requests.get(url + "/voice/status", timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):
            # Refused: nobody listens yet. Timed out: gunicorn's master listens, but its
            # worker is still starting (loading a speech model, say) and has not answered.
            time.sleep(0.1)
    raise RuntimeError("server did not start in 30 s")

"""`meterline agi`: the FastAGI server Asterisk's dialplan hands calls to."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import signal

import click
from flask.cli import with_appcontext

from ivr.agi.plan import AgiRenderer
from ivr.agi.server import FastAgiServer
from ivr.commands.serve import freeze_heap
from ivr.services import services
from ivr.voice.calls import VoiceService

log = logging.getLogger(__name__)


def _listen(raw: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[?([0-9A-Za-z.:-]+?)\]?:(\d{1,5})", raw)
    if not match or not 0 < int(match[2]) < 65536:
        raise click.BadParameter(f"{raw!r}: expected HOST:PORT, e.g. 127.0.0.1:4573")
    return match[1], int(match[2])


def agi_service() -> VoiceService:
    """The step driver with the Asterisk renderer; the operator is the Dial target."""
    svc = services()
    catalogue = svc.cache["catalogue"]
    settings = dataclasses.replace(svc.settings, operator_number=svc.settings.asterisk_operator)
    return VoiceService(
        settings,
        svc.sessions,
        catalogue,
        clock=lambda: svc.clock(),
        renderer=AgiRenderer(catalogue, settings.asterisk_sounds),
        engine=svc.webhook_engine(),
    )


@click.command("agi")
@click.option("--listen", default="127.0.0.1:4573", show_default=True, help="HOST:PORT")
@click.option(
    "--workers",
    default=32,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Threads running call steps against the database.",
)
@with_appcontext
def agi_command(listen: str, workers: int) -> None:
    """Answer calls from Asterisk: AGI(agi://HOST:PORT/meterline) in the dialplan."""
    host, port = _listen(listen)
    settings = services().settings
    server = FastAgiServer(agi_service(), settings.agi_allow, workers=workers)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        # On SIGTERM (systemd's stop) the calls in progress are cancelled, and each is closed
        # as the caller's hang-up would close it: flagged as dropped, never left open.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        listener = await server.start(host, port)
        freeze_heap()  # what a serve worker does once it is loaded: see its docstring
        allowed = ", ".join(str(n) for n in settings.agi_allow) or "nobody"
        click.echo(f"meterline agi: listening on {host}:{port}; FastAGI allowed from {allowed}")
        async with listener:
            await listener.serve_forever()

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.info("meterline agi: stopped")
    finally:
        server.pool.shutdown(wait=True)

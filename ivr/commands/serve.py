"""`meterline serve`: the production server (gunicorn, threaded workers)."""

from __future__ import annotations

import os
from typing import Any

import click
from flask.cli import with_appcontext


def gunicorn_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """What `meterline serve` runs gunicorn with (the load benchmark's ceiling uses it too)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        # Twilio gives up after 15 s in all; a request this slow is already lost.
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
    }


def run_gunicorn(options: dict[str, Any]) -> None:
    """Gunicorn running `create_app()` in each worker (no preloading: one engine per worker).
    Gunicorn is imported here: only `meterline serve` needs it."""
    from gunicorn.app.base import BaseApplication

    class MeterlineServer(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from ivr import create_app
            from ivr.streams import warm_up

            app = create_app()
            warm_up(app)  # the speech model, if any, loads while the worker waits for calls
            return app

    MeterlineServer().run()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--workers",
    default=lambda: (os.cpu_count() or 1) * 2,
    show_default="2 × cores",
    type=click.IntRange(1, 64),
    help="Worker processes; each also runs --threads threads.",
)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256))
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int) -> None:
    """Run the production server: gunicorn with threaded workers (WebSockets need threads)."""
    from ivr.services import services

    settings = services().settings
    if not settings.twilio_auth_token and not settings.skip_signature_check:
        raise click.UsageError("TWILIO_AUTH_TOKEN is not set: every webhook would be refused.")
    if settings.secret_key_generated:
        raise click.UsageError(
            "METERLINE_SECRET_KEY is not set: each worker would sign operator sessions with "
            "its own random key. Set it to a long random string."
        )
    run_gunicorn(gunicorn_options(host, port, workers, threads))

"""`meterline serve`: the production server (gunicorn, threaded workers)."""

from __future__ import annotations

import gc
import os
from typing import Any

import click
from flask.cli import with_appcontext


def control_socket(instance_path: str | None, port: int) -> dict[str, Any]:
    """gunicorn's control socket in the instance folder, one per port; off if there is none.

    gunicorn's default is one per-user path, so two servers under one user would take each
    other's. A Unix socket path is limited to about 100 bytes: a deeper folder turns it off.
    """
    if instance_path is None:
        return {"control_socket_disable": True}
    path = os.path.join(instance_path, f"gunicorn-{port}.ctl")
    if len(os.fsencode(path)) > 100:
        return {"control_socket_disable": True}
    return {"control_socket": path}


def gunicorn_options(
    host: str,
    port: int,
    workers: int,
    threads: int,
    *,
    instance_path: str | None = None,
    access_log: str | None = None,
) -> dict[str, Any]:
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
        # Off unless asked for; when on, phone numbers in it are masked.
        "accesslog": access_log,
        "logger_class": "ivr.commands.accesslog.MaskedLogger",
        "errorlog": "-",
        "loglevel": "info",
        "post_worker_init": freeze_heap,
        **control_socket(instance_path, port),
    }


def freeze_heap(_worker: object = None) -> None:
    """Take every object a worker has built by the time it serves (the app, its modules, the
    libraries': about 120,000) out of the cyclic garbage collector's walks. They live as long
    as the worker, yet each full collection walked them all: 53-95 ms, against 1.3-2.5 ms
    frozen, in process; one came in most runs of 3,600-6,000 webhooks (`python
    bench/gc_cost.py`). The worker's webhooks all wait for it. Reference counting
    still frees any that are dropped, except in a cycle (at most what start-up built, once);
    objects made later are collected as before. gunicorn calls it in each worker once the app
    is loaded (`post_worker_init`)."""
    gc.collect()
    gc.freeze()


def run_gunicorn(options: dict[str, Any], streams: tuple[str, int] | None = None) -> None:
    """Gunicorn running `create_app(serving=True)` in each worker (no preloading: one engine
    per worker). Gunicorn is imported here: only `meterline serve` needs it."""
    from gunicorn.app.base import BaseApplication

    class MeterlineServer(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from ivr import create_app
            from ivr.streams import warm_up

            app = create_app(serving=True)  # on SQLite, webhooks take turns (ivr/voice/gate.py)
            warm_up(app)  # the speech model, if any, loads while the worker waits for calls
            if streams is not None:
                from ivr.streams.server import start_stream_server

                start_stream_server(app, *streams)
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
@click.option(
    "--access-log",
    default=None,
    metavar="FILE",
    help="Log each request to FILE (`-`: stderr), phone numbers masked. Default: off.",
)
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int, access_log: str | None) -> None:
    """Run the production server: gunicorn with threaded workers (WebSockets need threads)."""
    from flask import current_app

    from ivr.commands.schema import check_schema
    from ivr.commands.summary import port_mismatch, summary_lines
    from ivr.services import services

    settings = services().settings
    if not settings.twilio_auth_token and not settings.skip_signature_check:
        raise click.UsageError("TWILIO_AUTH_TOKEN is not set: every webhook would be refused.")
    if settings.secret_key_generated:
        raise click.UsageError(
            "METERLINE_SECRET_KEY is not set: each worker would sign operator sessions with "
            "its own random key. Set it to a long random string, e.g. the output of "
            "`python3 -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    check_schema()
    _check_storage()
    options = gunicorn_options(
        host, port, workers, threads, instance_path=current_app.instance_path,
        access_log=access_log,
    )  # fmt: skip
    extra = {
        "instance folder": current_app.instance_path,
        "workers": f"{workers} × {threads} threads",
        "access log": f"{access_log} (numbers masked)" if access_log else "off",
        "control socket": options.get("control_socket", "off"),
    }
    streams = _stream_server(settings, host, port)
    if streams is not None:
        extra["media streams"] = f"{host}:{streams[1]} (proxy /voice/stream there)"
    for line in summary_lines(settings, f"{host}:{port}", extra):
        click.echo(line, err=True)
    warning = port_mismatch(settings.public_url, port)
    if warning:
        click.secho(f"warning: {warning}", err=True, fg="yellow")
    run_gunicorn(options, streams)


def _stream_server(settings: Any, host: str, port: int) -> tuple[str, int] | None:
    """Where the media-stream server listens (ivr/streams/server.py), if speech is on.

    The workers' apps are built from the environment: with METERLINE_STREAM_PORT set they
    leave /voice/stream to that server, and a call's audio costs no web worker thread.
    """
    from ivr.streams import speech_enabled

    if not speech_enabled(settings):
        return None
    # port + 1000: the next port is often a second instance (docs/deploy.md: 8000 and 8001).
    stream_port = settings.stream_port or port + 1000
    os.environ["METERLINE_STREAM_PORT"] = str(stream_port)
    return host, stream_port


def _check_storage() -> None:
    """Refuse to start on storage the line cannot write (see ivr/storage_check.py)."""
    from ivr.services import services
    from ivr.storage_check import database_problem, folder_problem
    from ivr.streams import speech_enabled

    svc = services()
    problem = database_problem(svc.engine)
    if problem is None and speech_enabled(svc.settings):
        problem = folder_problem(svc.settings.audio_dir, "METERLINE_AUDIO_DIR")
    if problem is not None:
        raise click.ClickException(problem + ". Fix it, then start again.")

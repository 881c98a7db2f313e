"""`meterline demo`: a demo dataset, a server on 127.0.0.1:5000 and one simulated call."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import make_server

from ivr.demo_data import DEMO_ACCOUNTS, demo_phones, load_demo
from ivr.services import services
from ivr.simulator.phone import SimulatedCall, scripted
from ivr.streams import warm_up
from storage.migrate import upgrade

DEMO_ENV = "demo.env"


def read_demo_env(instance_path: str) -> dict[str, str]:
    """The demo's saved token and secret key, if a demo ran here before."""
    path = Path(instance_path) / DEMO_ENV
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            if value:
                values[name.strip()] = value.strip()
    return values


def demo_secrets(instance_path: str) -> dict[str, str]:
    """The demo's own token and secret key, made once and kept in the instance folder."""
    path = Path(instance_path) / DEMO_ENV
    values = read_demo_env(instance_path)
    if not values.get("TWILIO_AUTH_TOKEN") or not values.get("METERLINE_SECRET_KEY"):
        values = {
            "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
            "METERLINE_SECRET_KEY": secrets.token_hex(32),
        }
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
        path.chmod(0o600)
    return values


def demo_keys() -> str:
    """Keys for the demo call from +79211234567: each meter's next value, then 1 to confirm."""
    steps = []
    for meter in DEMO_ACCOUNTS[0].meters:
        value = meter.start + meter.monthly * 12
        steps += [format(value.quantize(Decimal("0.1")), "f").replace(".", "*") + "#", "1"]
    return " ".join(steps)


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-call", is_flag=True, help="Serve only; skip the demo call.")
@with_appcontext
def demo_command(host: str, port: int, no_call: bool) -> None:
    """Load the demo dataset, serve the line, and place one simulated call."""
    from ivr import create_app

    settings = services().settings
    # A token or key already in the environment wins: `meterline call` signs with it too.
    overrides = {
        name: value
        for name, value in demo_secrets(current_app.instance_path).items()
        if not os.environ.get(name)
    }
    overrides["METERLINE_PUBLIC_URL"] = f"http://{host}:{port}"
    if settings.window != (1, 31):
        overrides["METERLINE_WINDOW"] = "1-31"
    if not settings.operator_number:
        # So that 0 shows a transfer: the modelled line's own operators' number.
        overrides["METERLINE_OPERATOR_NUMBER"] = "+78172597904"
    app = create_app(overrides)
    warm_up(app)
    upgrade(app.extensions["meterline"].settings.database_url)
    with app.app_context():
        added = load_demo(services().sessions())
    click.echo(f"demo data: {added} accounts added ({len(DEMO_ACCOUNTS)} in the demo set)")
    click.echo("demo: readings are taken every day of the month (METERLINE_WINDOW=1-31)")
    # The transcript is the demo's output; request lines would drown it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://{host}:{port}"
    if not no_call:
        token = overrides.get("TWILIO_AUTH_TOKEN") or settings.twilio_auth_token
        _demo_call(app, base, token)
    # The demo takes readings every day: this month, in the line's time zone, is the period.
    _print_help(base, datetime.now(settings.timezone).strftime("%Y-%m"))
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()


def _demo_call(app: Flask, base: str, token: str) -> None:
    caller = DEMO_ACCOUNTS[0].phones[0]
    click.echo(f"\n--- a demo call from {caller} (keys: {demo_keys()}) ---")
    phone = SimulatedCall(
        base_url=base, token=token, caller=caller, on_heard=lambda t: click.echo(f"🔊 {t}")
    )
    phone.run(scripted(demo_keys()))
    click.echo("--- end of the demo call ---\n")


def _print_help(base: str, period: str) -> None:
    click.echo(f"The line is listening on {base} (Ctrl+C to stop). Call it from a second terminal:")
    # `meterline call` goes to METERLINE_PUBLIC_URL (default http://127.0.0.1:5000): name the
    # demo's own URL whenever that would not be it, so each command works as printed.
    configured = os.environ.get("METERLINE_PUBLIC_URL", "").rstrip("/")
    url = "" if base == (configured or "http://127.0.0.1:5000") else f" --url {base}"
    if url and configured:
        url += f" --public-url {base}"
    for number, what in demo_phones():
        click.echo(f"  meterline call{url} --from {number}    # {what}")
    click.echo(f"Then: meterline export readings --period {period} -o readings.xlsx")
    click.echo(f"Operators review flagged calls at {base}/operator/ — first create a sign-in:")
    click.echo("  meterline operators add LOGIN --admin")

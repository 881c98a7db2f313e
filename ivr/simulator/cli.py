"""`meterline call`: place a simulated call against a running server, as Twilio would."""

from __future__ import annotations

import os
from collections.abc import Iterator

import click
from flask import current_app
from flask.cli import with_appcontext

from ivr.russian import plural
from ivr.services import services
from ivr.simulator.phone import Answer, CallError, SimulatedCall, scripted
from ivr.simulator.stream import LiveStream


def _interactive() -> Iterator[Answer]:
    """Answers typed at the terminal: keys (e.g. 123*5#), empty line for silence, q to hang up."""
    while True:
        try:
            line = input("  клавиши (Enter — молчание, q — положить трубку) > ").strip()
        except EOFError:
            yield None
            return
        if line.lower() in ("q", "hangup"):
            yield None
            return
        if line.startswith("wav:"):
            yield ("wav", line[4:])
        else:
            yield line


@click.command("call")
@click.option("--from", "caller", required=True, help="The caller's number, e.g. +79211234567.")
@click.option(
    "--url",
    default=None,
    help="Our server. Default: METERLINE_PUBLIC_URL (itself http://127.0.0.1:5000 by default).",
)
@click.option("--to", default="+78172597904", show_default=True, help="The number called.")
@click.option(
    "--keys",
    default=None,
    help="Scripted answers, one per prompt: keys such as 1 or 123*5#, _ for silence, "
    "hangup to hang up, wav:FILE.wav to say a value. Interactive when omitted.",
)
@click.option(
    "--public-url",
    default=None,
    help="The URL Twilio would sign (default: METERLINE_PUBLIC_URL if set, else --url).",
)
@with_appcontext
def call_command(
    caller: str, url: str | None, to: str, keys: str | None, public_url: str | None
) -> None:
    """Call the line like Twilio does: signed webhooks, TwiML followed verb by verb."""
    settings = services().settings
    token = settings.twilio_auth_token
    if not token:
        from ivr.demo import read_demo_env

        token = read_demo_env(current_app.instance_path).get("TWILIO_AUTH_TOKEN", "")
        if token:
            click.echo("(TWILIO_AUTH_TOKEN is not set: using the token of `meterline demo`)")
    if not token:
        raise click.UsageError("TWILIO_AUTH_TOKEN is not set: the call could not be signed.")
    # Twilio signs the public URL; a call sent straight to --url is signed for that URL unless
    # METERLINE_PUBLIC_URL says the server checks another one.
    target = url or settings.public_url
    public = public_url or (settings.public_url if "METERLINE_PUBLIC_URL" in os.environ else target)
    phone = SimulatedCall(
        base_url=target,
        token=token,
        caller=caller,
        public_url=public,
        to=to,
        on_heard=lambda text: click.echo(f"🔊 {text}"),
        open_stream=LiveStream,
    )
    click.echo(f"☎  {caller} → {to} ({phone.call_sid})")
    try:
        transcript = phone.run(scripted(keys) if keys is not None else _interactive())
    except (CallError, OSError) as exc:
        raise click.ClickException(f"the call failed: {exc}") from None
    if transcript.dialed:
        click.echo(f"☎  соединение с оператором {transcript.dialed}")
    requests = plural(len(transcript.latencies), "запрос", "запроса", "запросов")
    click.echo(f"☎  звонок окончен ({requests})")

"""Every `meterline` subcommand, found by name and imported only when it is used.

The table names each command's module and its one-line help, so `meterline --help` lists them
and `meterline speech parse` runs without importing the others (alembic, gunicorn, requests,
the database stack) or building the app. The table's line is the command's short help
everywhere (`meterline --help`, `flask --app ivr --help`); its docstring stays the long help.
"""

from __future__ import annotations

import importlib

import click
from flask import Flask
from flask.cli import AppGroup

# name -> ("module:attribute", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("ivr.commands.db:db_group", "Database schema."),
    "import": (
        "ivr.billing.cli:import_group",
        "Load accounts, meters and reading history from the billing centre's CSV files.",
    ),
    "export": (
        "ivr.billing.cli:export_group",
        "Hand readings to the billing centre as CSV or xlsx.",
    ),
    "serve": (
        "ivr.commands.serve:serve_command",
        "Run the production server: gunicorn with threaded workers (WebSockets need threads).",
    ),
    "demo": (
        "ivr.demo:demo_command",
        "Load the demo dataset, serve the line, and place one simulated call.",
    ),
    "call": (
        "ivr.simulator.cli:call_command",
        "Call the line like Twilio does: signed webhooks, TwiML followed verb by verb.",
    ),
    "operators": ("ivr.operator.cli:operators_group", "Operators of the review view."),
    "speech": (
        "ivr.speech_cli:speech_group",
        "Offline speech: try the number parser, check a model.",
    ),
    "speech-eval": (
        "ivr.speech_cli:speech_eval_command",
        "Score exact-value accuracy, word error rate and real-time factor on labelled WAVs.",
    ),
    "agi": (
        "ivr.agi.cli:agi_command",
        "Answer calls from Asterisk: a FastAGI server for AGI(agi://HOST:PORT/meterline).",
    ),
    "prompts": ("ivr.agi.render:prompts_group", "The prompts as sound files, for Asterisk."),
}


def load_command(name: str) -> click.Command:
    """Import the command `name` of the table."""
    target, short_help = COMMANDS[name]
    module, attribute = target.split(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    command.short_help = short_help
    return command


class CommandTable(AppGroup):
    """The app's CLI group (`app.cli`): the table's commands, each imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Registered commands and the table's, without importing any."""
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A registered command, or the table's, imported now."""
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


def register_commands(app: Flask) -> None:
    """Give the app meterline's commands (imported when looked up, not now)."""
    table = CommandTable(name=app.cli.name)
    for name, command in app.cli.commands.items():
        table.add_command(command, name)
    app.cli = table

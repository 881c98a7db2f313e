"""Registers every `meterline` subcommand on the app's CLI."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    """Attach each feature's commands."""
    from ivr.billing.cli import export_group, import_group
    from ivr.commands.db import db_group
    from ivr.commands.serve import serve_command
    from ivr.demo import demo_command
    from ivr.operator.cli import operators_group
    from ivr.simulator.cli import call_command
    from ivr.speech_cli import speech_eval_command, speech_group

    for command in (
        db_group,
        import_group,
        export_group,
        serve_command,
        demo_command,
        call_command,
        operators_group,
        speech_group,
        speech_eval_command,
    ):
        app.cli.add_command(command)

"""The `meterline` command: Flask's CLI (run, routes, shell) plus meterline's own commands.

Flask's group builds the app just to list or find a command; ours finds meterline's commands
in their table (`ivr.commands.COMMANDS`), so `--help` and commands that need no app (`speech
parse`) start as quickly as `flask --help`. Commands that need the app build it themselves
(`with_appcontext`).
"""

from __future__ import annotations

import sys

import click
from click.utils import make_default_short_help
from flask.cli import FlaskGroup

from ivr.commands import COMMANDS, load_command
from ivr.config import ConfigError


def _create_app() -> object:
    from ivr import create_app

    return create_app()


class MeterlineGroup(FlaskGroup):
    """Flask's group, with meterline's commands looked up without building the app."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Flask's own commands (run, shell, routes, plugins) and meterline's."""
        self._load_plugin_commands()
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Meterline's commands from the table; anything else as Flask finds it."""
        if cmd_name in COMMANDS:
            return load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, with meterline's help lines from the table (nothing imported)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                rows.append((name, make_default_short_help(COMMANDS[name][1], limit)))
            elif (command := self.commands.get(name)) is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=MeterlineGroup, create_app=_create_app, add_version_option=False)
def cli() -> None:
    """meterline: a phone line that takes meter readings."""


def main() -> None:
    """Entry point: a bad setting is one clear line, not a traceback."""
    try:
        cli.main(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"meterline: configuration error: {exc}", err=True)
        sys.exit(2)

"""The `meterline` command: Flask's CLI (run, routes, shell) plus meterline's own commands."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

from ivr.config import ConfigError


def _create_app() -> object:
    from ivr import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def cli() -> None:
    """meterline: a phone line that takes meter readings."""


def main() -> None:
    """Entry point: a bad setting is one clear line, not a traceback."""
    try:
        cli.main(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"meterline: configuration error: {exc}", err=True)
        sys.exit(2)

"""Placeholder: filled in by its feature."""

from __future__ import annotations

import click


@click.command("call")
def call_command() -> None:
    """Not yet available."""

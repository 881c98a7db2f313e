"""Placeholder: filled in by its feature."""

from __future__ import annotations

import click


@click.command("demo")
def demo_command() -> None:
    """Not yet available."""

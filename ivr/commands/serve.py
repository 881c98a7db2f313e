"""Placeholder: filled in by its feature."""

from __future__ import annotations

import click


@click.command("serve")
def serve_command() -> None:
    """Not yet available."""

"""Placeholder: filled in by its feature."""

from __future__ import annotations

import click


@click.group("operators")
def operators_group() -> None:
    """Not yet available."""

"""Placeholder: filled in by its feature."""

from __future__ import annotations

import click


@click.group("import")
def import_group() -> None:
    """Not yet available."""


@click.group("export")
def export_group() -> None:
    """Not yet available."""

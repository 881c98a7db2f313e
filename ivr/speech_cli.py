"""Placeholder: filled in by its feature."""

from __future__ import annotations

import click


@click.group("speech")
def speech_group() -> None:
    """Not yet available."""


@click.command("speech-eval")
def speech_eval_command() -> None:
    """Not yet available."""

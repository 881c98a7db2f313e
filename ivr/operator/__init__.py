"""The operator review view (placeholder until its feature lands)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach the operator blueprint and its extensions."""

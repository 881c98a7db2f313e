"""Twilio Media Streams (placeholder until the speech feature lands)."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Attach the media-stream WebSocket endpoint."""

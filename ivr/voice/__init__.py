"""Twilio voice webhooks (being built)."""

from __future__ import annotations

from flask import Blueprint

voice = Blueprint("voice", __name__, url_prefix="/voice")

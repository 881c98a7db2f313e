"""Fixtures for fault tests: the webhook fixtures, plus a cuttable line to PostgreSQL."""

from __future__ import annotations

from tests.webhooks.conftest import IN_WINDOW, frozen_app, twilio

__all__ = ["IN_WINDOW", "frozen_app", "twilio"]

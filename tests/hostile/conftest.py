"""Fixtures for hostile-input tests: the webhook fixtures."""

from __future__ import annotations

from tests.webhooks.conftest import IN_WINDOW, frozen_app, twilio

__all__ = ["IN_WINDOW", "frozen_app", "twilio"]

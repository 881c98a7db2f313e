"""What every request needs, built once per process: settings, database, prompts, recognizer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from storage.clock import utcnow
from storage.db import make_engine, make_sessionmaker, make_webhook_engine


@dataclass
class Services:
    """Per-process singletons, kept in `app.extensions['meterline']`."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    # The clock behind every "now" of the line; tests replace it.
    clock: Callable[[], datetime] = utcnow
    # Filled lazily by features that need them (prompt catalogue, speech recognizer).
    cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Create the engine and session factory for these settings."""
        # Statement parameters hold callers' numbers and call states: keep them out of
        # error messages, which go to the logs and to system_error flags.
        engine = make_engine(settings.database_url, hide_parameters=True)
        return cls(settings=settings, engine=engine, sessions=make_sessionmaker(engine))

    def webhook_engine(self) -> Engine:
        """The webhooks' hot-path engine (built on first use), disposed with `engine`."""
        webhooks: Engine | None = self.cache.get("webhook_engine")
        if webhooks is None:
            webhooks = self.cache["webhook_engine"] = make_webhook_engine(
                self.settings.database_url
            )
            event.listen(self.engine, "engine_disposed", lambda _engine: webhooks.dispose())
        return webhooks


def services() -> Services:
    """The current app's services."""
    # The app itself, not its proxy: an attribute read through the proxy costs about ten
    # times as much (see ivr.request.current_request), and a webhook asks for this often.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    svc: Services = app.extensions["meterline"]
    return svc

"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from storage.db import make_webhook_engine


@pytest.fixture
def webhooks(database_url: str, clean_db: Engine) -> Iterator[Engine]:
    """The webhooks' engine (autocommit, no pre-ping) on the test database."""
    engine = make_webhook_engine(database_url)
    yield engine
    engine.dispose()

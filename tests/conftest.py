"""Shared fixtures: a real database (SQLite by default, PostgreSQL when
METERLINE_TEST_DATABASE_URL is set), migrated once, emptied after each test."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ivr import create_app
from storage.db import make_engine
from storage.migrate import upgrade
from storage.models import Base

TEST_TOKEN = "test-auth-token-0123456789abcdef"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long fault and load tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test database, migrated to head once per session.

    On PostgreSQL each session gets a schema of its own (selected through the connection's
    search_path, so server processes started by e2e tests use it too): sessions of several
    developers, or of CI and a developer, on one server do not disturb each other.
    """
    base = os.environ.get("METERLINE_TEST_DATABASE_URL")
    if not base:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        upgrade(url)
        yield url
        return
    with own_schema(base) as url:
        upgrade(url)
        yield url


@contextmanager
def own_schema(base: str, prefix: str = "test") -> Iterator[str]:
    """A PostgreSQL schema of its own on the server at `base`, dropped afterwards: the URL
    that selects it through the connection's search_path."""
    schema = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def empty_tables(engine: Engine) -> None:
    """Delete every row, children first (tests that commit through real servers need this)."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def clean_db(engine: Engine) -> Iterator[Engine]:
    """A database emptied after the test, for tests whose code commits for real."""
    empty_tables(engine)
    yield engine
    empty_tables(engine)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session joined into an outer transaction that is rolled back after the test."""
    with engine.connect() as connection:
        outer = connection.begin()
        db = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield db
        finally:
            db.close()
            outer.rollback()


@pytest.fixture
def app_config(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Settings for a test app; tests may change them before asking for `app`."""
    return {
        "METERLINE_DATABASE_URL": database_url,
        "TWILIO_AUTH_TOKEN": TEST_TOKEN,
        "METERLINE_PUBLIC_URL": "https://ivr.example.org",
        "METERLINE_SECRET_KEY": "test-secret-key",
        "METERLINE_AUDIO_DIR": str(tmp_path / "audio"),
        "METERLINE_OPERATOR_NUMBER": "+78172597904",
    }


@pytest.fixture
def app(app_config: dict[str, str], clean_db: Engine) -> Iterator[Flask]:
    """The real app on the test database, emptied after the test."""
    application = create_app(app_config)
    application.config["TESTING"] = True
    yield application
    application.extensions["meterline"].engine.dispose()

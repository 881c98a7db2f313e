"""`meterline db upgrade`: create or migrate the schema."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ivr.services import services
from storage.migrate import upgrade


@click.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema (Alembic), on SQLite or PostgreSQL."""
    upgrade(services().settings.database_url, revision)
    click.echo(f"database is at revision {revision}")

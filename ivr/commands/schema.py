"""Commands that need the schema say how to get it, instead of failing deep in a query."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ivr.services import services

F = TypeVar("F", bound=Callable[..., Any])


def database_shown(url: str) -> str:
    """The database URL without its password, for messages and the start-up summary.

    >>> database_shown("postgresql://meterline:s3cret@db.local:5432/meterline")
    'postgresql://meterline:***@db.local:5432/meterline'
    """
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def check_schema() -> None:
    """Stop with one clear line when the database is unreachable or not at the code's revision.

    Decided: commands never migrate by themselves, not even an empty database. A production
    upgrade is "migrations first, then a restart" (docs/deploy.md), and several workers or
    commands starting at once must not race to create tables; `meterline db upgrade` is one
    explicit step (the demo runs it for you).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from storage.migrate import schema_problem

    svc = services()
    where = database_shown(svc.settings.database_url)
    try:
        problem = schema_problem(svc.engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise click.ClickException(
            f"cannot reach the database {where}: {reason[0] if reason else type(exc).__name__}"
        ) from None
    if problem:
        raise click.ClickException(f"{problem} ({where}): run `meterline db upgrade` first")


def needs_schema(command: F) -> F:
    """Run `check_schema()` before the command (use under `@with_appcontext`)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_schema()
        return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

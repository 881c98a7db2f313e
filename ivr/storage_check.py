"""Whether the line can write what it must keep: the database and the recordings folder.

`meterline serve` checks both before it starts, so read-only storage is a clear message at
start-up rather than apologies to every caller; at run time the operator view answers a
write that fails with a polite page instead of a 500.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from flask import Flask, render_template, request
from sqlalchemy import Engine, insert, make_url
from sqlalchemy.exc import InternalError, OperationalError, SQLAlchemyError

from storage.clock import utcnow
from storage.models import Counter

log = logging.getLogger("meterline")
WRITE_FAILED = (
    "Не удалось сохранить: база данных сейчас недоступна для записи. Ничего не изменено. "
    "Повторите позже или сообщите администратору."
)


def database_problem(engine: Engine) -> str | None:
    """Why nothing can be written to the database (a row inserted, then rolled back), or None."""
    where = make_url(str(engine.url)).render_as_string(hide_password=True)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            key = f"start-up-check:{secrets.token_hex(8)}"
            conn.execute(insert(Counter).values(key=key, count=0, window_start=utcnow()))
            transaction.rollback()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return f"the database {where} cannot be written: {reason}"
    return None


def folder_problem(folder: Path, what: str) -> str | None:
    """Why files cannot be written in `folder` (created if missing), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, prefix=".write-check-")
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        return f"{what} {folder} cannot be written: {exc.strerror or exc}"
    return None


def init_app(app: Flask) -> None:
    """Answer a database failure in the operator view with a polite page (503), not a 500.

    The webhooks catch their own errors (the caller hears an apology); this is for the rest.
    """

    def database_failed(exc: SQLAlchemyError) -> tuple[str, int]:
        log.error("%s: database failed: %s", request.path, str(exc).splitlines()[0])
        if (request.blueprint or "").startswith("operator"):
            return render_template("operator/error.html", message=WRITE_FAILED), 503
        return "Service unavailable: the database failed\n", 503

    app.register_error_handler(OperationalError, database_failed)
    # PostgreSQL in read-only mode (a standby, default_transaction_read_only) raises this.
    app.register_error_handler(InternalError, database_failed)

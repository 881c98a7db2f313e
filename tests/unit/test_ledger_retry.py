"""Which database errors a unit of work is run again for, and how often."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.ledger_retry import ATTEMPTS, is_retryable, retrying


class PgError(Exception):
    """Stands in for a psycopg error: only its SQLSTATE matters here."""

    def __init__(self, sqlstate: str):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def operational(orig: Exception) -> OperationalError:
    return OperationalError("UPDATE …", {}, orig)


def sqlite_busy() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError("database is locked")
    exc.sqlite_errorcode = 5  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (operational(PgError("40P01")), True),  # deadlock_detected
        (operational(PgError("40001")), True),  # serialization_failure
        (operational(PgError("57014")), False),  # query_canceled
        (operational(sqlite_busy()), True),
        (IntegrityError("INSERT …", {}, Exception("uq_readings_current_accepted")), True),
        (IntegrityError("INSERT …", {}, Exception("readings_idempotency_key_key")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_conflicts_are_retried(exc: Exception, retry: bool) -> None:
    assert is_retryable(exc) is retry


def test_a_conflict_is_retried_until_the_work_succeeds() -> None:
    tries: list[int] = []

    def work() -> str:
        tries.append(1)
        if len(tries) < ATTEMPTS:
            raise operational(PgError("40P01"))
        return "stored"

    assert retrying(work) == "stored" and len(tries) == ATTEMPTS


@pytest.mark.parametrize(("sqlstate", "tries"), [("40001", ATTEMPTS), ("57014", 1)])
def test_retries_are_bounded_and_other_errors_are_not_retried(sqlstate: str, tries: int) -> None:
    made: list[int] = []

    def work() -> None:
        made.append(1)
        raise operational(PgError(sqlstate))

    with pytest.raises(OperationalError):
        retrying(work)
    assert len(made) == tries

"""Running a unit of work again when the database asks for it: deadlock, serialization
failure, a busy SQLite database, or a racing writer caught by the current-reading index."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
log = logging.getLogger(__name__)

# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected.
RETRY_SQLSTATES = {"40001", "40P01"}
# SQLite primary result codes: SQLITE_BUSY (also BUSY_SNAPSHOT, 517 & 0xFF), SQLITE_LOCKED.
RETRY_SQLITE_CODES = {5, 6}
# The current-reading index as each database names it in its error.
CURRENT_INDEX = ("uq_readings_current_accepted", "readings.meter_id, readings.period")
ATTEMPTS = 4


def is_retryable(exc: BaseException) -> bool:
    """Whether running the same unit of work again may succeed."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in RETRY_SQLSTATES:
        return True
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in RETRY_SQLITE_CODES:
        return True
    # Two writers that both skipped the meter lock: the loser's retry sees the winner.
    return any(name in str(orig) for name in CURRENT_INDEX)


def retrying(work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `work` (a whole transaction: it opens, commits or rolls back its own session)
    up to `attempts` times while the database reports a retryable conflict."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            log.info("database conflict, attempt %d of %d: %s", attempt, attempts, exc.orig)
            # A short random pause, so two losers do not collide again in step.
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")

"""What an import did: rows read, imported, skipped, and every rejected row with its reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from storage.accounts import MeterOwnedElsewhere

T = TypeVar("T")


@dataclass
class Report:
    """Counts and rejections of one import run."""

    rows: int = 0
    imported: int = 0
    skipped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    details: dict[str, int] = field(default_factory=dict)

    def reject(self, line: int, reason: str) -> None:
        """Record a rejected row."""
        self.rejected.append((line, reason))

    def lines(self) -> list[str]:
        """The rejections, by line, as printed."""
        return [f"line {line}: {reason}" for line, reason in sorted(self.rejected)]

    def summary(self) -> str:
        """One line of counts."""
        text = (
            f"rows: {self.rows}, imported: {self.imported}, "
            f"skipped as duplicates: {self.skipped}, rejected: {len(self.rejected)}"
        )
        extra = ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in self.details.items())
        return text + (f" ({extra})" if extra else "")


def db_reason(exc: Exception) -> str:
    """A one-line reason from a database error, without the SQL and parameters."""
    if not isinstance(exc, SQLAlchemyError):
        return str(exc)
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip().splitlines()
    return "the database refused it: " + (message[0][:200] if message else type(exc).__name__)


def write_chunk(
    sessions: sessionmaker[Session],
    items: Sequence[T],
    write: Callable[[Session, Sequence[T]], None],
    on_failure: Callable[[T, str], None],
    reset: Callable[[Session], None] | None = None,
) -> int:
    """Write `items` in one transaction; if the database refuses, retry each under a savepoint.

    Validation happened before, so the fast path nearly always succeeds; the slow path keeps
    a row that the database refuses (a concurrent writer, a constraint) from taking the good
    ones with it. `on_failure` hears every item that could not be written. Returns the number
    of items written.
    """
    with sessions() as session:
        try:
            write(session, items)
            session.commit()
            return len(items)
        except (SQLAlchemyError, MeterOwnedElsewhere):
            session.rollback()
            if reset is not None:
                reset(session)
        written = 0
        for item in items:
            try:
                with session.begin_nested():
                    write(session, [item])
                written += 1
            except (SQLAlchemyError, MeterOwnedElsewhere) as exc:
                on_failure(item, db_reason(exc))
        session.commit()
        return written

"""Readings: store one exactly once, read a meter's history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.clock import utcnow
from storage.models import Reading


def insert_reading(
    session: Session,
    *,
    meter_id: int,
    value: Decimal,
    taken_at: datetime,
    period: str,
    source: str,
    status: str,
    call_id: int | None = None,
    idempotency_key: str | None = None,
    replaces_reading_id: int | None = None,
    input_mode: str | None = None,
    transcript: str | None = None,
    confidence: float | None = None,
    audio_file: str | None = None,
) -> Reading | None:
    """Insert a reading; None if one with the same idempotency key already exists.

    The unique key with ON CONFLICT DO NOTHING (not check-then-insert) is what keeps a
    replayed Twilio webhook, or two racing workers, from storing the same reading twice.
    """
    values = {
        "meter_id": meter_id,
        "value": value,
        "taken_at": taken_at,
        "period": period,
        "source": source,
        "status": status,
        "call_id": call_id,
        "idempotency_key": idempotency_key,
        "input_mode": input_mode,
        "transcript": transcript,
        "confidence": confidence,
        "audio_file": audio_file,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert_fn(Reading)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Reading.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is None:
        return None
    if replaces_reading_id is not None:
        session.execute(
            update(Reading)
            .where(Reading.id == replaces_reading_id, Reading.replaced_by_id.is_(None))
            .values(replaced_by_id=new_id)
        )
    return session.get(Reading, new_id)


def reading_by_key(session: Session, idempotency_key: str) -> Reading | None:
    """The reading stored under this idempotency key, if any."""
    return session.scalars(
        select(Reading).where(Reading.idempotency_key == idempotency_key)
    ).one_or_none()


def accepted_history(
    session: Session, meter_ids: list[int], limit: int = 24
) -> dict[int, list[Reading]]:
    """Per meter, its latest accepted readings that nothing replaced, oldest first."""
    if not meter_ids:
        return {}
    rows = session.scalars(
        select(Reading)
        .where(
            Reading.meter_id.in_(meter_ids),
            Reading.status == "accepted",
            Reading.replaced_by_id.is_(None),
        )
        .order_by(Reading.meter_id, Reading.taken_at.desc(), Reading.id.desc())
    )
    history: dict[int, list[Reading]] = {mid: [] for mid in meter_ids}
    for row in rows:
        if len(history[row.meter_id]) < limit:
            history[row.meter_id].append(row)
    return {mid: list(reversed(items)) for mid, items in history.items()}


def period_readings(session: Session, meter_ids: list[int], period: str) -> dict[int, Reading]:
    """Per meter, the current (not replaced, not rejected) reading of a period, if any."""
    if not meter_ids:
        return {}
    rows = session.scalars(
        select(Reading)
        .where(
            Reading.meter_id.in_(meter_ids),
            Reading.period == period,
            Reading.status != "rejected",
            Reading.replaced_by_id.is_(None),
        )
        .order_by(Reading.taken_at, Reading.id)
    )
    return {row.meter_id: row for row in rows}

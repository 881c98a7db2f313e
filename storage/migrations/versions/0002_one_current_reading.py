"""at most one current accepted reading per meter and period

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 07:40:00

Before the index can exist, the data must obey it: where a meter's period holds several
accepted readings that nothing replaced (the bugs of issue 8 left such pairs), the latest one
(by taken_at, then id) stays current and each other one is marked replaced by it, with an
audit entry (action "ledger_repair") saying what was superseded and why.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = "status = 'accepted' AND replaced_by_id IS NULL"
INDEX = "uq_readings_current_accepted"

readings = sa.table(
    "readings",
    sa.column("id", sa.Integer),
    sa.column("meter_id", sa.Integer),
    sa.column("period", sa.String),
    sa.column("value", sa.String),
    sa.column("taken_at", sa.DateTime(timezone=True)),
    sa.column("status", sa.String),
    sa.column("replaced_by_id", sa.Integer),
)
audit_log = sa.table(
    "audit_log",
    sa.column("operator_id", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("action", sa.String),
    sa.column("call_id", sa.Integer),
    sa.column("reading_id", sa.Integer),
    sa.column("flag_id", sa.Integer),
    sa.column("before", sa.Text),
    sa.column("after", sa.Text),
    sa.column("note", sa.Text),
)


def _text(value: object) -> str:
    """A value as the audit log writes it: exact, no trailing zeros (NUMERIC gives 102.0000)."""
    return format(Decimal(str(value)).normalize(), "f")


def repair(conn: sa.Connection, now: datetime) -> int:
    """Make the latest current reading of each doubled meter-period the only one; how many
    readings were superseded."""
    r = readings.c
    current = sa.and_(r.status == "accepted", r.replaced_by_id.is_(None))
    doubled = (
        sa.select(r.meter_id, r.period)
        .where(current)
        .group_by(r.meter_id, r.period)
        .having(sa.func.count() > 1)
    )
    superseded = 0
    for meter_id, period in conn.execute(doubled).all():
        rows = conn.execute(
            sa.select(r.id, r.value, r.taken_at)
            .where(current, r.meter_id == meter_id, r.period == period)
            .order_by(r.taken_at.desc(), r.id.desc())
        ).all()
        keep = rows[0]
        for old in rows[1:]:
            conn.execute(sa.update(readings).where(r.id == old.id).values(replaced_by_id=keep.id))
            before = {"reading_id": old.id, "value": _text(old.value), "period": period}
            after = {"replaced_by_id": keep.id, "value": _text(keep.value)}
            conn.execute(
                sa.insert(audit_log).values(
                    operator_id=None,
                    at=now,
                    action="ledger_repair",
                    call_id=None,
                    reading_id=old.id,
                    flag_id=None,
                    before=json.dumps(before, ensure_ascii=False),
                    after=json.dumps(after, ensure_ascii=False),
                    note="migration 0002: one current reading per meter and period; "
                    "the latest one stays",
                )
            )
            superseded += 1
    return superseded


def upgrade() -> None:
    """Repair doubled periods, then create the partial unique index."""
    repair(op.get_bind(), datetime.now(UTC))
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.create_index(
            INDEX,
            ["meter_id", "period"],
            unique=True,
            sqlite_where=sa.text(CURRENT),
            postgresql_where=sa.text(CURRENT),
        )


def downgrade() -> None:
    """Drop the index (the repaired readings stay replaced)."""
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_index(INDEX)

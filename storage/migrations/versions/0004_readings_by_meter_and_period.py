"""readings indexed by meter and period

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:50:00

A confirmation reads its meter's open rows of the period, and "a call comes in" the
period's current readings of the caller's meters. With only `ix_readings_period` and
`ix_readings_meter_taken`, SQLite's planner (which has no statistics) chose the period's
index and read every reading handed in that month: a webhook cost more as the month went on.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_readings_meter_period", "readings", ["meter_id", "period"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_readings_meter_period", table_name="readings")

"""rate_limit_hits dropped

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:40:00

The hourly limit per caller is one atomic counter row per number (`counters`, migration
0003; `storage.counters.take`). Since issue 9's round two nothing reads or writes
`rate_limit_hits`: its rows are old calls' timestamps, which the limit no longer looks at.
The downgrade recreates the table empty (0004's code counted through `counters` as well).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_caller_at")
    op.drop_table("rate_limit_hits")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limit_caller_at", ["caller", "at"], unique=False)

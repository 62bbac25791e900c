"""The recoveries a tenant has running (issue 19, 4): `recovery_slots`, so that the bound on how many run at
once is counted in one place, one request at a time, rather than in Temporal's visibility, which lags.

A new table: an older version never reads or writes it, so the downgrade keeps it (its rows are a moment's
and are checked against Temporal before they count). A store where it exists already (downgraded, then
upgraded again) is left as it is.

Revision ID: 0007
Revises: 0006
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.migrations import present

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if present.has_table("recovery_slots"):
        return
    op.create_table(
        "recovery_slots",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("endpoint_id", sa.String(40), primary_key=True),
        sa.Column("reserved_at", sa.Float, nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    """Nothing to undo: the table stays, unread by the version this goes back to."""

"""Ordered lanes' last sequence numbers (`lane_sequences`), kept outside the lanes' workflows.

A lane whose run is terminated and started again by its next event reads its last number here, so that the
numbers a receiver sees never start again at 1 (docs/delivery.md, "Ordered delivery"). A new table, so an
older version never reads or writes it: the downgrade keeps it, with its numbers, for when this version
comes back. A store where it exists already (downgraded, then upgraded again) is left as it is.

Revision ID: 0003
Revises: 0002
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.migrations import present

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if present.has_table("lane_sequences"):
        return
    op.create_table(
        "lane_sequences",
        sa.Column("endpoint_id", sa.String(40), primary_key=True),
        sa.Column("lane_key", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("last_sequence", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Nothing to undo: the table stays, unread by the version this goes back to, for when this comes back."""

"""Ordered delivery (issue 21): an endpoint's `ordered` and `ordered_on_failure`.

Both are added with a server default (false, 'block'), so every endpoint there is stays unordered, and a
row an older version inserts after a downgrade (it names neither column) is an unordered endpoint too.
For the same reason the downgrade keeps them: an older version reads and writes the table without them.
A store where they exist already (downgraded, then upgraded again) is left as it is.

Revision ID: 0002
Revises: 0001
Created: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.migrations import present

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (
    sa.Column("ordered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("ordered_on_failure", sa.String(8), nullable=False, server_default=sa.text("'block'")),
)


def upgrade() -> None:
    have = present.columns("endpoints")
    for column in COLUMNS:
        if column.name not in have:
            op.add_column("endpoints", column)


def downgrade() -> None:
    """Nothing to undo: the columns stay, with their defaults, for the version this goes back to."""

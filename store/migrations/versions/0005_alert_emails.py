"""Alert mails (issue 23, item 7): an endpoint's `alert_emails`.

One nullable column (sealed JSON of addresses, NULL for none): every endpoint there is has none, and a
row an older version inserts after a downgrade (it names no such column) has none either. So the
downgrade keeps it, as 0002 keeps its columns: an older version reads and writes the table without it.
A store where it exists already (downgraded, then upgraded again) is left as it is.

Revision ID: 0005
Revises: 0004
Created: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.migrations import present

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "alert_emails" not in present.columns("endpoints"):
        op.add_column("endpoints", sa.Column("alert_emails", sa.Text, nullable=True))


def downgrade() -> None:
    """Nothing to undo: the column stays, empty for the version this goes back to."""

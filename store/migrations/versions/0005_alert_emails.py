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
from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    have = _columns("endpoints")
    if "alert_emails" not in have:
        op.add_column("endpoints", sa.Column("alert_emails", sa.Text, nullable=True))


def downgrade() -> None:
    """Nothing to undo: the column stays, empty for the version this goes back to."""


def _columns(table: str) -> set[str]:
    """The table's columns in the store; none offline (`python -m cli.migrate sql`, the SQL for an empty
    database, where there is nothing to look at)."""
    if context.is_offline_mode():
        return set()
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}

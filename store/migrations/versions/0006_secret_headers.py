"""Custom headers marked secret (issue 23, item 4): an endpoint's `secret_headers`, the names (lower case)
whose values the API shows masked.

Names only, never a value: the values stay sealed in `headers` as before. Nullable: NULL is a row from
before, whose every header the API then showed masked, and still does (store/database.py reads NULL as
every header marked) until the tenant unmarks one; a row an older version writes after a downgrade
leaves it as it was. The downgrade keeps it: an
older version reads and writes the table without it, and masks every value anyway. A store where it exists
already (downgraded, then upgraded again) is left as it is.

Revision ID: 0006
Revises: 0005
Created: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.migrations import present

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "secret_headers" not in present.columns("endpoints"):
        op.add_column("endpoints", sa.Column("secret_headers", sa.JSON, nullable=True))


def downgrade() -> None:
    """Nothing to undo: the column stays, unread by the version this goes back to."""

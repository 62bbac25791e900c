"""`webhooks listen` (issue 22): its sessions and the attempts waiting for their CLI.

Two new tables, nothing else changed: an older version ignores them, so the downgrade drops them (what
they held is a moment's: sessions that end within seconds of their CLI, and attempts that Temporal makes
again once their activity's heartbeat stops). A store where they exist already is left as it is.

Revision ID: 0004
Revises: 0003
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from store.migrations import present

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_when = sa.DateTime(timezone=True)


def upgrade() -> None:
    if not present.has_table("listen_sessions"):
        op.create_table(
            "listen_sessions",
            sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("tenant", sa.String(64), nullable=False),
            sa.Column("endpoint_id", sa.String(40), nullable=False),
            sa.Column("credential", sa.String(200), nullable=False),
            sa.Column("opened_at", _when, nullable=False),
            sa.Column("seen_at", _when, nullable=False),
            sa.Column("closed_at", _when, nullable=True),
            sa.Column("close_reason", sa.Text, nullable=True),
        )
        op.create_index("ix_listen_sessions_tenant", "listen_sessions", ["tenant"])
        op.create_index("ix_listen_sessions_endpoint_id", "listen_sessions", ["endpoint_id"])
        op.create_index("ix_listen_sessions_closed_at", "listen_sessions", ["closed_at"])
    if not present.has_table("listen_handoffs"):
        op.create_table(
            "listen_handoffs",
            sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("session_id", sa.String(40), nullable=False),
            sa.Column("tenant", sa.String(64), nullable=False),
            sa.Column("task_token", sa.Text, nullable=False),
            sa.Column("request", sa.Text, nullable=False),
            sa.Column("created_at", _when, nullable=False),
            sa.Column("claimed_by", sa.String(40), nullable=True),
            sa.Column("claimed_at", _when, nullable=True),
            sa.Column("heartbeat_at", _when, nullable=True),
        )
        op.create_index("ix_listen_handoffs_session_id", "listen_handoffs", ["session_id"])


def downgrade() -> None:
    op.drop_table("listen_handoffs")
    op.drop_table("listen_sessions")

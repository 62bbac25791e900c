"""The store as it was when migrations began (2026-12-05), and the way in for a store made before them.

A store made by an earlier version has the tables but no `alembic_version`: this revision runs on it too.
It creates what is missing, adds the columns an older table lacks (every column added after the first
release is nullable) and widens the text columns the first releases made narrower, as the start-up code
that made the schema used to, and more. The three tables that hold only a moment's state (an endpoint's
attempts in flight, the door's token buckets) are made again, and `endpoint_rate_buckets`, which they
replaced, is dropped: what they held is refilled within seconds, and nothing in them is a record.

The tables are written out here, not imported from store/tables.py: this is the schema of this revision,
and store/tables.py moves on with the next ones.

Revision ID: 0001
Revises:
Created: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_when = sa.DateTime(timezone=True)
schema = sa.MetaData()

endpoints = sa.Table(
    "endpoints",
    schema,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.String(1024), nullable=False),
    sa.Column("signature_method", sa.String(8), nullable=False),
    sa.Column("secret", sa.String(512), nullable=False),
    sa.Column("event_types", sa.JSON, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", _when, nullable=False),
    sa.Column("updated_at", _when, nullable=False),
    sa.Column("headers", sa.Text, nullable=True),
    sa.Column("rate_limit_per_second", sa.Float, nullable=True),
    sa.Column("retry_schedule", sa.JSON, nullable=True),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_expires_at", _when, nullable=True),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("disabled_by", sa.String(16), nullable=True),
    sa.Column("disabled_at", _when, nullable=True),
)

signing_keys = sa.Table(
    "signing_keys",
    schema,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("private_key", sa.Text, nullable=False),
    sa.Column("created_at", _when, nullable=False),
    sa.Column("signs_from", _when, nullable=False),
    sa.Column("retires_at", _when, nullable=True),
    sa.UniqueConstraint("tenant", "generation"),
)

endpoint_health = sa.Table(
    "endpoint_health",
    schema,
    sa.Column("endpoint_id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False, index=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("failing_since", _when, nullable=True),
    sa.Column("failing_notified", sa.Boolean, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_attempt_at", _when, nullable=True),
    sa.Column("last_success_at", _when, nullable=True),
)

operational_notices = sa.Table(
    "operational_notices",
    schema,
    sa.Column("id", sa.String(160), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("endpoint_id", sa.String(40), nullable=False),
    sa.Column("transition", sa.String(16), nullable=False),
    sa.Column("at", _when, nullable=False),
    sa.Column("owed_at", _when, nullable=False),
    sa.Column("object", sa.JSON, nullable=False),
    sa.Column("sent_at", _when, nullable=True, index=True),
)

endpoint_attempt_counts = sa.Table(
    "endpoint_attempt_counts",
    schema,
    sa.Column("endpoint_id", sa.String(40), primary_key=True),
    sa.Column("hour", _when, primary_key=True),
    sa.Column("succeeded", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
)

portal_session_revocations = sa.Table(
    "portal_session_revocations",
    schema,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("until", _when, nullable=False, index=True),
)

# A moment's state: made again, empty, if a store has them in another shape.
endpoint_flow = sa.Table(
    "endpoint_flow",
    schema,
    sa.Column("endpoint_id", sa.String(40), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("window", sa.Float, nullable=False),
    sa.Column("lowered_at", sa.Float, nullable=False),
    sa.Column("lowered_by", sa.Text, nullable=True),
    sa.Column("paused_until", sa.Float, nullable=False),
    sa.Column("paused_at", sa.Float, nullable=False),
    sa.Column("pause_reason", sa.Text, nullable=True),
    sa.Column("paused_by", sa.String(200), nullable=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("tokens_at", sa.Float, nullable=False),
    sa.Column("next_turn_at", sa.Float, nullable=False),
    sa.Column("mean_seconds", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

endpoint_leases = sa.Table(
    "endpoint_leases",
    schema,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("endpoint_id", sa.String(40), nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

token_buckets = sa.Table(
    "token_buckets",
    schema,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

MOMENTARY = (endpoint_flow, endpoint_leases, token_buckets)
REPLACED = ("endpoint_rate_buckets",)


def upgrade() -> None:
    if context.is_offline_mode():  # the SQL for an empty database: nothing to look at
        for table in schema.sorted_tables:
            table.create(op.get_bind())
        return
    bind = op.get_bind()
    found = sa.inspect(bind)
    have = set(found.get_table_names())
    for name in REPLACED:
        if name in have:
            op.drop_table(name)
    for table in schema.sorted_tables:
        if table in MOMENTARY and table.name in have:  # whatever shape an earlier version gave it
            table.drop(bind)
            have.discard(table.name)
        if table.name not in have:
            table.create(bind)
            continue
        columns = {c["name"]: c for c in found.get_columns(table.name)}
        narrow = []
        for column in table.columns:
            if column.name not in columns:
                if not column.nullable:
                    raise RuntimeError(
                        f"the store's {table.name} table lacks {column.name}, a column every row must "
                        "fill: it was made by a development version, not a release. Upgrade it with the "
                        "release it came from, or start from an empty store"
                    )
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
            elif _narrower(columns[column.name]["type"], column.type):
                narrow.append((column, columns[column.name]["type"]))
        if narrow:
            # Stores of the first releases: url VARCHAR(2048), secret VARCHAR(128), too narrow for what
            # sealing writes. Widened in place on PostgreSQL; SQLite, which keeps a declared length (it
            # never enforces it) and cannot alter a column, has the table copied with the wider types,
            # its rows and indexes with it (Alembic's batch mode), in this migration's transaction.
            with op.batch_alter_table(table.name) as batch:
                for column, was in narrow:
                    batch.alter_column(column.name, type_=column.type, existing_type=was)


def _narrower(found: sa.types.TypeEngine[object], declared: sa.types.TypeEngine[object]) -> bool:
    """Whether a text column in the store holds less than its declaration here."""
    if not isinstance(found, sa.String) or not isinstance(declared, sa.String):
        return False
    if isinstance(declared, sa.Text) or declared.length is None:
        return found.length is not None
    return found.length is not None and found.length < declared.length


def downgrade() -> None:
    """Back to before migrations: only the record of them goes (Alembic removes it). Every table and row
    stays, as the versions before migrations made and read them; an older version adds what it lacks."""

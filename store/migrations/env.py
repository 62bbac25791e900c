"""Alembic's entry point for the endpoint store: run by store/migrate.py, which hands it a connection
(online), or asks for the SQL alone (`python -m cli.migrate sql`, offline)."""

from __future__ import annotations

from alembic import context

from store.tables import Base

config = context.config

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    # store/migrate.py opened it, in a transaction it holds the migration lock in.
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()

"""What the store has already, as a revision after 0001 asks before it adds a table or a column.

Every such revision leaves a store that has what it adds as it is (downgraded, then upgraded again: the
downgrades keep what an older version ignores), so each asks the store first. Offline (`python -m
cli.migrate sql`, the SQL for an empty database) there is no store to look at, and the answer is nothing:
the revision then writes all that it adds.

The revisions import this module, so a change here changes what every one of them does, on stores already
upgraded and on those still to be: keep these answers as they are, and give a revision that needs another
question a function of its own.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op


def has_table(name: str) -> bool:
    """Whether the store has the table `name`; never offline."""
    return not context.is_offline_mode() and sa.inspect(op.get_bind()).has_table(name)


def columns(table: str) -> set[str]:
    """The columns of the store's `table`; none offline."""
    if context.is_offline_mode():
        return set()
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}

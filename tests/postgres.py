"""PostgreSQL for the tests: the server is `chaos.postgres.PostgresServer` (`make chaos` uses it too); a
test without Debian's `postgresql` fails, saying how to install it (.ci/run does).
"""

from __future__ import annotations

from pathlib import Path

from chaos.postgres import PostgresServer, postgres_bin_dir
from tests.conftest import needed

__all__ = ["PostgresServer", "require_postgres"]


def require_postgres() -> Path:
    return needed(postgres_bin_dir(), "PostgreSQL's server binaries", "apt-get install postgresql")

"""PostgreSQL for the tests: the server is `chaos.postgres.PostgresServer` (`make chaos` uses it too); a
test without Debian's `postgresql` is skipped, and fails in CI, which installs it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos.postgres import PostgresServer, postgres_bin_dir

__all__ = ["PostgresServer", "require_postgres"]


def require_postgres() -> Path:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run should have installed them")
        pytest.skip(message)
    return bin_dir

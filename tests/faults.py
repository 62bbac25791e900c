"""Faults injected for real, for the tests: they live in `chaos.faults`, which `make chaos` uses too."""

from chaos.faults import disk_full, paused, small_filesystem, sqlite_locked

__all__ = ["disk_full", "paused", "small_filesystem", "sqlite_locked"]

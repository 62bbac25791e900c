"""Faults injected for real, for the tests: they live in `chaos.faults`, which `make chaos` uses too."""

from chaos.faults import paused, sqlite_locked

__all__ = ["paused", "sqlite_locked"]

"""Durations as people write them in settings and commands: `90`, `90s`, `15m`, `1h`, `2d`."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`"90"`, `"90s"`, `"15m"`, `"1h"`, `"2d"` → a timedelta; `ValueError` that says what to write."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration: use seconds, or 90s, 15m, 1h, 2d")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])

"""core/settings.py: the schedule and API keys as settings read them, and what they refuse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import DEFAULT_RETRY_SCHEDULE, Settings, parse_api_keys, parse_retry_schedule


def test_default_schedule_is_eight_attempts_over_about_27_6_hours() -> None:
    delays = parse_retry_schedule(DEFAULT_RETRY_SCHEDULE)
    assert len(delays) + 1 == 8
    assert sum(delays) / 3600 == pytest.approx(27.6, abs=0.05)


@pytest.mark.parametrize("value", ["5,x", "5,-1", "0"])
def test_bad_schedule_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_retry_schedule(value)
    with pytest.raises(ValidationError):
        Settings(retry_schedule=value)


def test_api_keys() -> None:
    assert parse_api_keys("tenant_a:key_a, tenant_b:key_b") == {"key_a": "tenant_a", "key_b": "tenant_b"}
    assert parse_api_keys("") == {}
    for bad in ("tenant_a", "tenant a:key", "a:k,b:k"):
        with pytest.raises(ValueError):
            parse_api_keys(bad)

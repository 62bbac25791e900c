"""Pure functions: settings parsing, URL rules, response classification and Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from activities.delivery import classify, parse_retry_after
from core.destinations import DestinationError, validate_url
from core.models import AttemptOutcome
from core.settings import DEFAULT_RETRY_SCHEDULE, Settings, parse_api_keys, parse_retry_schedule
from core.store import EndpointStore
from tests.conftest import TEST_KEYRING


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


@pytest.mark.parametrize(
    ("url", "allow_private", "message"),
    [
        ("ftp://example.com/hook", True, "http"),
        ("example.com/hook", True, "http"),
        ("https:///hook", True, "host"),
        ("https://user:pw@example.com/", True, "credentials"),
        ("http://127.0.0.1:9000/hook", False, "loopback address"),
        ("http://10.1.2.3/hook", False, "private address"),
        ("http://169.254.169.254/latest", False, "link-local address"),
        ("http://[::1]/hook", False, "loopback address"),
        ("http://[64:ff9b::a9fe:a9fe]/latest", False, "NAT64 form of 169.254.169.254"),
        ("http://[::ffff:10.0.0.1]/hook", False, "IPv4-mapped form of 10.0.0.1, a private address"),
        ("http://localhost:8000/hook", False, "localhost, a loopback name"),
    ],
)
def test_refused_urls(url: str, allow_private: bool, message: str) -> None:
    # Every literal form and the table itself: tests/test_destinations.py.
    with pytest.raises(DestinationError, match=message):
        validate_url(url, allow_private=allow_private)


def test_accepted_urls() -> None:
    assert validate_url("https://example.com/hook", allow_private=False)
    assert validate_url("http://127.0.0.1:9000/hook", allow_private=True)
    assert validate_url("http://[64:ff9b::808:808]/hook", allow_private=False)  # 8.8.8.8 through NAT64


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, AttemptOutcome.SUCCEEDED),
        (201, AttemptOutcome.SUCCEEDED),
        (202, AttemptOutcome.SUCCEEDED),
        (204, AttemptOutcome.SUCCEEDED),
        (299, AttemptOutcome.SUCCEEDED),
        (301, AttemptOutcome.RETRYABLE),
        (400, AttemptOutcome.RETRYABLE),
        (410, AttemptOutcome.GONE),
        (429, AttemptOutcome.RETRYABLE),
        (500, AttemptOutcome.RETRYABLE),
    ],
)
def test_classify(status: int, outcome: AttemptOutcome) -> None:
    assert classify(status) is outcome


def test_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120
    http_date = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(http_date, now=now) == 90
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None, now=now) is None


def test_sqlite_store_makes_its_data_dir(tmp_path: Path) -> None:
    # The API or a worker started alone, before anything made the data dir, must not fail to start.
    store = EndpointStore(f"sqlite:///{tmp_path / 'not' / 'yet' / 'webhooks.db'}", TEST_KEYRING)
    store.create_schema()
    assert store.for_tenant("t") == []
    store.close()

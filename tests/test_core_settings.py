"""core/settings.py: the schedule and API keys as settings read them, and what they refuse."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

from core.settings import (
    DEFAULT_RETRY_SCHEDULE,
    KeyGrant,
    Settings,
    parse_api_keys,
    parse_key_grants,
    parse_origins,
    parse_retry_schedule,
)
from domain.access import ALL_SCOPES, Scope


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


def test_a_retry_window_of_0_closes_deliveries_with_their_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    # What docs/delivery.md and BENCHMARKS.md offer to save a timer and active storage per delivery.
    monkeypatch.setenv("WEBHOOKS_RETRY_WINDOW_SECONDS", "0")
    assert Settings().retry_window_seconds == 0
    monkeypatch.setenv("WEBHOOKS_RETRY_WINDOW_SECONDS", "-1")
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Settings()


def test_api_keys() -> None:
    assert parse_api_keys("tenant_a:key_a, tenant_b:key_b") == {"key_a": "tenant_a", "key_b": "tenant_b"}
    assert parse_api_keys("") == {}
    for bad in ("tenant_a", "tenant a:key", "a:k,b:k"):
        with pytest.raises(ValueError):
            parse_api_keys(bad)


def test_a_key_holds_every_scope_unless_its_entry_names_some() -> None:
    grants = parse_key_grants("a:key_1, a:key_2:emit, b:key_3:manage, b:key_4:emit+read, c:x:Y9")
    assert grants == {
        "key_1": KeyGrant("a", ALL_SCOPES),
        "key_2": KeyGrant("a", frozenset({Scope.EMIT})),
        "key_3": KeyGrant("b", frozenset({Scope.MANAGE, Scope.READ})),  # manage implies read
        "key_4": KeyGrant("b", frozenset({Scope.EMIT, Scope.READ})),
        "x:Y9": KeyGrant("c", ALL_SCOPES),  # a key of old with a ':' in it is still one key
    }
    assert parse_api_keys("a:key_1,a:key_2:emit") == {"key_1": "a", "key_2": "a"}


@pytest.mark.parametrize("entry", ["a:key:mange", "a:key:emit+manag", "a:key:emit+everything"])
def test_an_unknown_scope_is_refused_without_quoting_the_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="the entry of tenant a ends with an unknown scope") as refused:
        parse_key_grants(entry)
    assert "key" not in str(refused.value).split("(")[0].replace("WEBHOOKS_API_KEYS", "")


def test_the_public_api_url_is_an_http_url_without_query() -> None:
    assert Settings(public_api_url="https://w.example.com/").public_api_url == "https://w.example.com"
    assert Settings(public_api_url="").public_api_url is None
    for bad in ("w.example.com", "https://w.example.com/?x=1", "ftp://w.example.com", "https://"):
        with pytest.raises(ValidationError, match="WEBHOOKS_PUBLIC_API_URL"):
            Settings(public_api_url=bad)


def test_frame_ancestors_are_origins_as_a_browser_spells_them() -> None:
    assert parse_origins("") == ()
    assert parse_origins(
        "https://App.example.com, http://localhost:3000,https://a.com:443,http://[::1]:80"
    ) == (
        "https://app.example.com",
        "http://localhost:3000",
        "https://a.com",
        "http://[::1]",
    )
    assert Settings(portal_frame_ancestors="https://a.com").frame_ancestors == ("https://a.com",)


@pytest.mark.parametrize(
    "value",
    [
        "https://a.com/",
        "https://*.a.com",
        "ftp://a.com",
        "a.com",
        "https://a.com:99999",
        "'self'",
        "https://a.com https://b.com",
        "https://user@a.com",
        "*",
    ],
)
def test_anything_but_an_origin_is_refused_as_a_frame_ancestor(value: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(portal_frame_ancestors=value)


def test_a_trace_url_template_makes_one_link_per_trace() -> None:
    settings = Settings(trace_url_template="http://localhost:16686/trace/{trace_id}")
    assert settings.trace_url("4bf92f3577b34da6a3ce929d0e0e4736") == (
        "http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"
    )
    assert settings.trace_url(None) is None  # an attempt made with tracing off
    assert Settings(trace_url_template="").trace_url("4bf9") is None  # set but empty, as compose leaves it
    assert Settings().trace_url("4bf9") is None


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("localhost:16686/trace/{trace_id}", "http(s) URL"),
        ("javascript:alert(1)//{trace_id}", "http(s) URL"),
        ("http://localhost:16686/trace/", "`{trace_id}` once"),
        ("http://jaeger/{trace_id}?span={span_id}", "`{trace_id}` once"),
    ],
)
def test_a_trace_url_template_that_links_nowhere_is_refused_saying_why(value: str, said: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(said)):
        Settings(trace_url_template=value)


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("WEBHOOKS_EGRESS_PROXY", "socks5://proxyuser:PROXYPASS456@proxy:1080", "PROXYPASS456"),
        ("WEBHOOKS_SMTP_URL", "ftp://mailuser:SMTPPASSWORD123@mail.example.com:587", "SMTPPASS"),
        # One '=' short: the whole key, or the larger part of both, would be in the message.
        ("WEBHOOKS_ENCRYPTION_KEYS", "k1:C9dG/Anu98SL8rmdsgHR4KPOyKvhGIl1HIg7Nt4zaX0", "C9dG/Anu98SL8"),
        ("WEBHOOKS_API_KEYS", "tenant a:key_a_SECRETSECRETSECRET", "SECRETSECRET"),
    ],
)
def test_a_bad_setting_is_refused_without_quoting_its_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, secret: str
) -> None:
    """What a process prints as it refuses to start ends up in container and CI logs: the setting's name
    and what is wrong with it, never its value, which may hold a key, a password or a proxy's credentials
    (pydantic quotes each input in its errors unless told not to)."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    said = str(refused.value)
    assert secret not in said and secret[:8] not in said, said
    assert name.removeprefix("WEBHOOKS_").lower() in said


@pytest.mark.stack  # starts processes of the service: `make test`'s, not `make check`'s
@pytest.mark.parametrize("module", ["api", "worker"])
def test_a_process_refusing_a_bad_setting_prints_no_secret(module: str) -> None:
    """The same refusal as a process starting prints it, traceback and all, to what becomes its log."""
    proxy = "socks5://proxyuser:PROXYPASS456@proxy:1080"
    env = {**os.environ, "WEBHOOKS_EGRESS_PROXY": proxy}
    started = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode != 0
    assert "WEBHOOKS_EGRESS_PROXY must be an http:// or https:// URL" in started.stderr
    assert "PROXYPASS" not in started.stderr + started.stdout

"""Every setting of the service: environment variables with the `WEBHOOKS_` prefix, read once at start-up.

The API, the worker and the launcher all build one `Settings()`; the README lists each field.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.signing import JwtSigner, load_or_create_rsa_key

DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
_TENANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # matched whole: `$` would let "acme\n" through


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", frozen=True)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_address: str | None = Field(
        default=None, description="host:port of an existing Temporal; unset runs the embedded dev server"
    )
    temporal_namespace: str = "default"
    temporal_ui_url: str | None = Field(
        default=None, description="Base URL of the Temporal Web UI, for links to workflows"
    )
    task_queue: str = "webhooks"
    data_dir: Path = Path(".data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the endpoint store; default a SQLite file in data_dir"
    )
    api_keys: SecretStr = SecretStr("")
    retry_schedule: str = DEFAULT_RETRY_SCHEDULE
    delivery_timeout: float = Field(default=15.0, gt=0, le=120)
    allow_private_urls: bool = False
    endpoint_concurrency: int = Field(
        default=8, ge=1, le=100, description="Attempts in flight to one endpoint at once, per worker"
    )
    jwt_private_key: SecretStr | None = Field(
        default=None, description="PEM of the RSA key for the jwt method; default a key kept in data_dir"
    )
    jwt_issuer: str = "flexprice-webhooks"
    log_retention_days: int = Field(default=30, ge=1, le=3650)
    max_payload_bytes: int = 256 * 1024
    request_body_timeout: float = Field(
        default=30.0, gt=0, le=600, description="seconds a client has to send a request's whole body"
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1",
        description="interface of the worker's Prometheus endpoint (0.0.0.0 in a container)",
    )
    worker_metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="port of the worker's Prometheus endpoint; 0 turns it off"
    )
    log_format: Literal["text", "json"] = "text"

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())
        return value

    @cached_property
    def retry_delays(self) -> list[float]:
        return parse_retry_schedule(self.retry_schedule)

    @cached_property
    def tenants_by_key(self) -> dict[str, str]:
        return parse_api_keys(self.api_keys.get_secret_value())

    @cached_property
    def cursor_key(self) -> bytes:
        """Signs the API's list cursors.

        Derived from the API keys, the one secret every API replica already shares, so that any replica
        accepts another's cursors; changing the keys ends the cursors in flight (a 422 that says to list
        again from the first page).
        """
        secret = self.api_keys.get_secret_value().encode()
        return hmac.new(secret, b"flexprice-webhooks list cursor", hashlib.sha256).digest()

    @property
    def max_request_bytes(self) -> int:
        """The largest request body the API reads: an event of `max_payload_bytes`, as a client may write it.

        The payload limit counts the compact UTF-8 JSON the API signs; the same payload from a client
        can be larger: JSON that escapes non-ASCII text as `\\uXXXX` takes up to 3 times the bytes (a
        character outside the BMP is 4 bytes of UTF-8 but 12 escaped), plus indentation. Four times the
        payload limit, plus 64 KiB for the envelope (type, id, whitespace), admits every such event.
        """
        return 4 * self.max_payload_bytes + 64 * 1024

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def ui_url(self) -> str | None:
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return None if self.temporal_address else f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'webhooks.db').resolve()}"

    @property
    def worker_metrics_address(self) -> str | None:
        if not self.worker_metrics_port:
            return None
        return f"{self.worker_metrics_host}:{self.worker_metrics_port}"

    @property
    def jwt_key_path(self) -> Path:
        return self.data_dir / "jwt-signing-key.pem"


def parse_retry_schedule(value: str) -> list[float]:
    """`"5,300"` → `[5.0, 300.0]`: the seconds to wait before each retry after the first attempt."""
    try:
        delays = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"retry schedule must be comma-separated seconds, got {value!r}") from None
    if any(d <= 0 for d in delays):
        raise ValueError(f"every delay of the retry schedule must be positive, got {value!r}")
    return delays


def parse_api_keys(value: str) -> dict[str, str]:
    """`"tenant_a:key_a,tenant_b:key_b"` → `{"key_a": "tenant_a", "key_b": "tenant_b"}`."""
    keys: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        tenant, sep, key = pair.partition(":")
        if not sep or not key or not _TENANT_ID.fullmatch(tenant):
            raise ValueError(
                "WEBHOOKS_API_KEYS must look like tenant_a:key_a,tenant_b:key_b "
                "(tenant ids use letters, digits, '_' and '-')"
            )
        if key in keys:
            raise ValueError(f"WEBHOOKS_API_KEYS gives one key to two tenants ({keys[key]}, {tenant})")
        keys[key] = tenant
    return keys


def load_jwt_signer(settings: Settings) -> JwtSigner:
    """The signer of the jwt method: the key given in settings, else one kept in the data dir."""
    pem = (
        settings.jwt_private_key.get_secret_value().encode()
        if settings.jwt_private_key
        else load_or_create_rsa_key(settings.jwt_key_path)
    )
    return JwtSigner.from_pem(pem, issuer=settings.jwt_issuer)

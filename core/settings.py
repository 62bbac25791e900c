"""Every setting of the service: environment variables with the `WEBHOOKS_` prefix, read once at start-up.

The API, the worker and the launcher all build one `Settings()`; docs/operating.md lists each field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.crypto import Keyring
from core.sessions import MAX_SESSION_SECONDS
from domain.access import ALL_SCOPES, Scope, parse_scopes
from domain.alerts import check_address, parse_tenant_alert_emails
from domain.durations import parse_duration
from domain.fairness import TenantWeights
from domain.schemas import EventValidation

DEFAULT_RETRY_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # matched whole: `$` would let "acme\n" through


class Settings(BaseSettings):
    # A setting refused is named with what is wrong with it, never quoted: pydantic would print the input,
    # a key, a password or a proxy's credentials among them, to the log of a process refusing to start.
    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", frozen=True, hide_input_in_errors=True)

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
    retry_window_seconds: float = Field(
        default=7 * 86400,
        ge=0,
        le=90 * 86400,
        description="how long after its schedule ends a delivery still takes manual retries (0: none; its "
        "workflow closes at once, one timer and a week of active storage fewer per delivery)",
    )
    disable_after: str = Field(
        default="5d",
        description="an endpoint whose every attempt failed for this long (no 2xx) is disabled: 30s, 2h, 5d",
    )
    temporal_rpc_timeout: float = Field(
        default=5.0, gt=0, le=60, description="seconds the API waits for any one answer from Temporal"
    )
    worker_max_activities: int = Field(
        default=200, ge=1, le=10_000, description="attempts one worker process makes at once"
    )
    worker_max_workflow_tasks: int = Field(
        default=50, ge=2, le=10_000, description="workflow tasks one worker process runs at once"
    )
    worker_health_window: float = Field(
        default=90,
        ge=3,
        le=3600,
        description="seconds without a worker polling the task queue before /healthz says there is none; "
        "longer than the server's long poll (matching.longPollExpirationInterval, 60 s by default)",
    )
    allow_private_urls: bool = False
    dashboard_temporal_links: bool = Field(
        default=False,
        description="the dashboard links deliveries to the Temporal Web UI (for operators who can open it; "
        "never for portal sessions)",
    )
    trace_url_template: str | None = Field(
        default=None,
        description="a trace viewer's URL with `{trace_id}` in it (Jaeger: "
        "`http://jaeger:16686/trace/{trace_id}`): the dashboard links each attempt's trace there, for "
        "operators signed in with an API key (never for portal sessions)",
    )
    egress_proxy: SecretStr | None = Field(
        default=None,
        description="http(s) URL of a forward proxy for every delivery; the proxy then guards addresses",
    )
    endpoint_concurrency: int = Field(
        default=8,
        ge=1,
        le=100,
        description="the most attempts in flight to one endpoint at once, across every worker; a 429, 503 "
        "or timeout lowers the endpoint's own limit below it, successes raise it back",
    )
    endpoint_max_rate: float = Field(
        default=100.0,
        ge=0.1,  # the least an endpoint may set
        le=10_000,
        description="the most deliveries a second to one endpoint: what an endpoint without a rate limit of "
        "its own gets, and the most it may set",
    )
    fairness: bool = Field(
        default=True,
        description="share dispatch between tenants by weight (Temporal's task queue fairness); make run "
        "starts its dev server with it on, and Temporal Cloud has a namespace setting",
    )
    tenant_weights: str = Field(
        default="*:1",
        description="each tenant's share of dispatch, tenant:weight pairs (acme:5,*:1; * is every other)",
    )
    emit_rate: float = Field(
        default=100.0, gt=0, le=100_000, description="events a second one API key may emit, on average"
    )
    emit_burst: int = Field(
        default=1000, ge=1, le=1_000_000, description="events one API key may emit at once beyond its rate"
    )
    test_events_per_minute: int = Field(
        default=20, ge=1, le=10_000, description="test events a tenant may send a minute, all endpoints"
    )
    max_endpoints_per_tenant: int = Field(
        default=100, ge=1, le=100_000, description="endpoints one tenant may have"
    )
    recovery_max_deliveries: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="the most deliveries one recover or replay may make (a wider window is refused)",
    )
    lane_max_queued: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        description=(
            "events an ordered lane holds behind its head; past it, POST /v1/events for its key answers "
            "429 until the lane drains"
        ),
    )
    recoveries_per_tenant: int = Field(
        default=3, ge=1, le=1000, description="recoveries and replays one tenant may have running at once"
    )
    jwt_private_key: SecretStr | None = Field(
        default=None, description="No longer read: refused, so that nobody relies on it (see the validator)"
    )
    jwt_issuer: str = "flexprice-webhooks"
    recovery_rate: float = Field(
        default=10.0,
        gt=0,
        le=1000,
        description="deliveries per second a recovery or replay makes to its endpoint",
    )
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
    encryption_keys: SecretStr = Field(
        default=SecretStr(""),
        description="kid:base64key,... (AES-256): encrypts Temporal payloads and the store's secrets",
    )
    encryption_keys_file: Path | None = Field(
        default=None,
        description="a file holding the encryption keys instead (a Docker or Kubernetes secret): kept "
        "outside the data dir, so that a backup of the data does not hold the keys that open it",
    )
    encryption_keys_retired: str = Field(
        default="",
        description="ids of keys of WEBHOOKS_ENCRYPTION_KEYS kept only to decrypt what they sealed (a key "
        "that leaked, or may have): no portal session or list cursor made with a key derived from one is "
        "accepted any more; comma-separated, never the first key",
    )
    payload_compression: bool = Field(
        default=True,
        description="compress each Temporal payload before encrypting it, when that makes it shorter; off "
        "while processes of a version before this one still run beside it (they cannot read it)",
    )
    payload_short_metadata: bool = Field(
        default=False,
        description="write each Temporal payload's key id and workflow binding in the short form (the "
        "workflow id's SHA-256, not the id), and each event's memo without its copy of created_at: on "
        "only once no process of a version before b8d5e66 runs or will run again (they cannot read it, "
        "and drop the events they cannot read)",
    )
    operator_key: SecretStr = Field(
        default=SecretStr(""), description="the operators' credential for the codec endpoint"
    )
    metrics_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="how long the API's /metrics reuses its visibility counts (each is a query to Temporal)",
    )
    metrics_token: SecretStr = Field(
        default=SecretStr(""),
        description="if set, the API's /metrics answers only `Authorization: Bearer <it>` (Prometheus's "
        "`authorization` setting)",
    )
    temporal_tls: bool = Field(default=False, description="connect to Temporal over TLS (system CAs)")
    temporal_tls_ca: Path | None = Field(default=None, description="PEM file of the CA of Temporal's cert")
    temporal_tls_cert: Path | None = Field(default=None, description="PEM file of our client cert (mTLS)")
    temporal_tls_key: Path | None = Field(default=None, description="PEM file of our client key (mTLS)")
    temporal_tls_server_name: str | None = Field(default=None, description="the name Temporal's cert has")
    temporal_api_key: SecretStr | None = Field(default=None, description="API key (Temporal Cloud)")
    portal_session_seconds: int = Field(
        default=3600,
        ge=1,
        le=MAX_SESSION_SECONDS,
        description="how long a portal session lasts when the call that opens it names no expires_in",
    )
    public_api_url: str | None = Field(
        default=None,
        description="the API's address as browsers reach it, for the links it hands out (portal sessions)",
    )
    portal_frame_ancestors: str = Field(
        default="",
        description="origins (scheme://host[:port], comma-separated) that may frame the dashboard",
    )
    # More than the gap between two long polls of a CLI on a slow network, and small enough that an
    # attempt handed to a CLI that was killed is failed as "listener gone" within a minute.
    listen_session_timeout: float = Field(
        default=30.0,
        ge=2,
        le=600,
        description="seconds after which a `webhooks listen` session whose CLI is not heard from ends",
    )
    validate_events: str = Field(
        default="off",
        description="off, strict, or tenant:mode pairs (acme:strict,*:off; * is every other tenant, off "
        "unless given): a strict tenant's emitted event whose data.object does not match its type's schema "
        "is a 422 naming the field",
    )
    smtp_url: SecretStr | None = Field(
        default=None,
        description="where alert mails go: smtp://user:pass@host:587 (STARTTLS) or smtps://…:465 (TLS); "
        "unset sends none",
    )
    alert_from: str | None = Field(default=None, description="the address alert mails come from")
    tenant_alert_emails: str = Field(
        default="",
        description="each tenant's alert addresses, tenant:address pairs (acme:ops@acme.com|cfo@acme.com)",
    )

    @field_validator("retry_schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value

    @field_validator("tenant_weights")
    @classmethod
    def _check_tenant_weights(cls, value: str) -> str:
        TenantWeights.parse(value)
        return value

    @cached_property
    def weights(self) -> TenantWeights:
        return TenantWeights.parse(self.tenant_weights)

    @field_validator("validate_events")
    @classmethod
    def _check_validate_events(cls, value: str) -> str:
        EventValidation.parse(value)
        return value

    @cached_property
    def event_validation(self) -> EventValidation:
        return EventValidation.parse(self.validate_events)

    @field_validator("egress_proxy")
    @classmethod
    def _check_proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # set but empty, as compose files leave it
        if not value.get_secret_value().startswith(("http://", "https://")):
            # Not quoted: a proxy URL may carry its credentials.
            raise ValueError("WEBHOOKS_EGRESS_PROXY must be an http:// or https:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # set but empty, as compose files leave it
        parse_smtp_url(value.get_secret_value())
        return value

    @field_validator("alert_from")
    @classmethod
    def _check_alert_from(cls, value: str | None) -> str | None:
        return check_address(value.strip(), where="WEBHOOKS_ALERT_FROM") if value else None

    @field_validator("tenant_alert_emails")
    @classmethod
    def _check_tenant_alert_emails(cls, value: str) -> str:
        parse_tenant_alert_emails(value)
        return value

    @cached_property
    def alert_emails(self) -> dict[str, list[str]]:
        """Each tenant's alert addresses (WEBHOOKS_TENANT_ALERT_EMAILS)."""
        return parse_tenant_alert_emails(self.tenant_alert_emails)

    @model_validator(mode="after")
    def _alerts_have_a_sender(self) -> Self:
        if self.smtp_url is not None and self.alert_from is None:
            raise ValueError(
                "WEBHOOKS_SMTP_URL is set and WEBHOOKS_ALERT_FROM is not: set it to the address alert mails "
                "come from (one your mail server lets you send as)"
            )
        return self

    @cached_property
    def smtp(self) -> SmtpServer | None:
        """Where alert mails are sent, if anywhere."""
        return parse_smtp_url(self.smtp_url.get_secret_value()) if self.smtp_url is not None else None

    @field_validator("jwt_private_key")
    @classmethod
    def _refuse_single_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            # One key for every tenant is what let one tenant's delivery verify at another's receiver.
            raise ValueError(
                "WEBHOOKS_JWT_PRIVATE_KEY is no longer read: each tenant has its own jwt signing keys in "
                "the endpoint store (docs/delivery.md, 'Signing keys'). Unset it"
            )
        return value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr) -> SecretStr:
        parse_api_keys(value.get_secret_value())
        return value

    @field_validator("disable_after")
    @classmethod
    def _check_disable_after(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("trace_url_template")
    @classmethod
    def _check_trace_url_template(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty, as compose files leave it
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"WEBHOOKS_TRACE_URL_TEMPLATE must be an http(s) URL, not {value!r}")
        if value.count("{trace_id}") != 1 or value.replace("{trace_id}", "").count("{"):
            raise ValueError(
                "WEBHOOKS_TRACE_URL_TEMPLATE must hold `{trace_id}` once and no other `{...}`, e.g. "
                f"http://jaeger:16686/trace/{{trace_id}}; got {value!r}"
            )
        return value

    def trace_url(self, trace_id: str | None) -> str | None:
        """The trace viewer's page of one trace, if the operator named a viewer."""
        if not self.trace_url_template or not trace_id:
            return None
        return self.trace_url_template.replace("{trace_id}", trace_id)

    @cached_property
    def disable_after_delta(self) -> timedelta:
        return parse_duration(self.disable_after)

    @field_validator("portal_frame_ancestors")
    @classmethod
    def _check_frame_ancestors(cls, value: str) -> str:
        parse_origins(value)
        return value

    @field_validator("public_api_url")
    @classmethod
    def _check_public_api_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                f"WEBHOOKS_PUBLIC_API_URL must be an http(s) URL without query or fragment, like "
                f"https://webhooks.example.com (got {value!r})"
            )
        return value.rstrip("/")

    @field_validator("encryption_keys")
    @classmethod
    def _check_encryption_keys(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value():
            Keyring.parse(value.get_secret_value())
        return value

    @field_validator("temporal_api_key")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _one_source_of_keys(self) -> Self:
        if self.encryption_keys.get_secret_value() and self.encryption_keys_file is not None:
            raise ValueError(
                "set WEBHOOKS_ENCRYPTION_KEYS or WEBHOOKS_ENCRYPTION_KEYS_FILE, not both: which keys open "
                "the data must not depend on which one wins"
            )
        return self

    @model_validator(mode="after")
    def _check_tls(self) -> Self:
        if (self.temporal_tls_cert is None) != (self.temporal_tls_key is None):
            raise ValueError("set both WEBHOOKS_TEMPORAL_TLS_CERT and WEBHOOKS_TEMPORAL_TLS_KEY, or neither")
        return self

    @cached_property
    def keyring(self) -> Keyring:
        """The encryption keys: the setting, else the file it names, else the file `make run` keeps in the
        data dir (a development key). The API, the worker and the operator commands refuse to start
        without them."""
        value = self.encryption_keys.get_secret_value()
        if self.encryption_keys_file is not None:
            try:
                # One entry a line, as secret files usually hold a list, or one line of commas.
                lines = self.encryption_keys_file.read_text().splitlines()
                value = ",".join(line.strip() for line in lines if line.strip())
            except OSError as err:
                where = self.encryption_keys_file
                raise SystemExit(
                    f"WEBHOOKS_ENCRYPTION_KEYS_FILE cannot be read: {err.strerror} ({where})"
                ) from None
            try:
                Keyring.parse(value)
            except ValueError as err:
                raise SystemExit(
                    f"WEBHOOKS_ENCRYPTION_KEYS_FILE ({self.encryption_keys_file}): {err}"
                ) from None
        elif not value and self.encryption_keys_path.exists():
            value = self.encryption_keys_path.read_text().strip()
        if not value:
            raise SystemExit(
                "WEBHOOKS_ENCRYPTION_KEYS is not set: every Temporal payload and every stored secret is "
                "encrypted with it. Make a key with `python -m cli.crypto new-key` (make run keeps one "
                f"in {self.encryption_keys_path})"
            )
        return Keyring.parse(value)

    @property
    def encryption_keys_path(self) -> Path:
        return self.data_dir / "encryption-keys"

    @property
    def operator_credential(self) -> str | None:
        """The operators' credential (the codec endpoint's): the setting, else `make run`'s file."""
        value = self.operator_key.get_secret_value()
        path = self.data_dir / "operator-key"
        if not value and path.exists():
            value = path.read_text().strip()
        return value or None

    @property
    def temporal_uses_tls(self) -> bool:
        return self.temporal_tls or any(
            p is not None
            for p in (self.temporal_tls_ca, self.temporal_tls_cert, self.temporal_tls_server_name)
        )

    @cached_property
    def retry_delays(self) -> list[float]:
        return parse_retry_schedule(self.retry_schedule)

    @cached_property
    def key_grants(self) -> dict[str, KeyGrant]:
        """Each API key's tenant and scopes."""
        return parse_key_grants(self.api_keys.get_secret_value())

    @cached_property
    def tenants_by_key(self) -> dict[str, str]:
        return {key: grant.tenant for key, grant in self.key_grants.items()}

    @cached_property
    def tenant_ids(self) -> frozenset[str]:
        return frozenset(self.tenants_by_key.values())

    @cached_property
    def retired_key_ids(self) -> frozenset[str]:
        """`encryption_keys_retired`, each a key of the keyring other than the current one."""
        retired = frozenset(filter(None, (kid.strip() for kid in self.encryption_keys_retired.split(","))))
        keyring = self.keyring
        unknown = sorted(retired - keyring.keys.keys())
        if unknown:
            raise SystemExit(
                f"WEBHOOKS_ENCRYPTION_KEYS_RETIRED names {', '.join(unknown)}, which "
                "WEBHOOKS_ENCRYPTION_KEYS does not list: a retired key is still listed, to decrypt what it "
                "sealed"
            )
        if keyring.current in retired:
            raise SystemExit(
                f"WEBHOOKS_ENCRYPTION_KEYS_RETIRED names {keyring.current}, the first key, which encrypts: "
                "put a new key first (`python -m cli.crypto new-key`), then retire the old one"
            )
        return retired

    @cached_property
    def cursor_keys(self) -> tuple[bytes, ...]:
        """Sign the API's list cursors: derived from the encryption keys, which every replica shares and
        no tenant knows. The current key's signs, every key's checks (`Keyring.derive`): a cursor holds
        across replicas mid-rotation, and ends with its key (a 422 that says to list again)."""
        return self.keyring.derive("flexprice-webhooks list cursor", retired=self.retired_key_ids)

    @cached_property
    def credential_keys(self) -> tuple[bytes, ...]:
        """Name API keys in the store (the door's buckets, listening endpoints) without holding them:
        derived as `cursor_keys` are, so every replica names a key alike; one name per encryption key
        (service/access.py's `key_ids`), the current key's first."""
        return self.keyring.derive("flexprice-webhooks credential id")

    @cached_property
    def portal_session_keys(self) -> tuple[bytes, ...]:
        """Sign portal session tokens (core/sessions.py), derived as `cursor_keys` are: every replica has
        them, no tenant knows them; a session lasts while the key that signed it is listed."""
        return self.keyring.derive("flexprice-webhooks portal session", retired=self.retired_key_ids)

    @cached_property
    def frame_ancestors(self) -> tuple[str, ...]:
        """The origins that may frame the dashboard (none by default)."""
        return parse_origins(self.portal_frame_ancestors)

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


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """An SMTP server as WEBHOOKS_SMTP_URL names it. `implicit_tls` (smtps://) speaks TLS from the start;
    otherwise STARTTLS is used whenever the server offers it, and required before a password is sent."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(value: str) -> SmtpServer:
    """`smtp://user:pass@mail.example.com:587` → the server; `ValueError` saying what to fix (never
    quoting the URL, which holds a password)."""
    like = "write it like smtp://user:password@mail.example.com:587 or smtps://user:password@host:465"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(f"WEBHOOKS_SMTP_URL is not a URL; {like}") from None
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"WEBHOOKS_SMTP_URL must be an smtp:// or smtps:// URL with a host; {like}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"WEBHOOKS_SMTP_URL has a path or a query, which mean nothing here; {like}")
    implicit = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if implicit else 587),
        implicit_tls=implicit,
        # Percent-encoded in the URL, as a password with '@' or ':' must be.
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def parse_retry_schedule(value: str) -> list[float]:
    """`"5,300"` → `[5.0, 300.0]`: the seconds to wait before each retry after the first attempt."""
    try:
        delays = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"retry schedule must be comma-separated seconds, got {value!r}") from None
    if any(d <= 0 for d in delays):
        raise ValueError(f"every delay of the retry schedule must be positive, got {value!r}")
    return delays


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What one API key may do: act for `tenant`, within `scopes`."""

    tenant: str
    scopes: frozenset[Scope]


# The optional last part of an entry, `:emit+read`: lowercase words joined with '+'. A key of old with a
# ':' in it still reads as one key, unless what follows its last ':' looks like this.
_SCOPE_LIST = re.compile(r"[a-z]+(\+[a-z]+)*")


def parse_key_grants(value: str) -> dict[str, KeyGrant]:
    """`"a:key_a,b:key_b:emit"` → key_a acts for tenant a with every scope, key_b for b, emitting only."""
    grants: dict[str, KeyGrant] = {}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        tenant, sep, rest = pair.partition(":")
        if not sep or not rest or not TENANT_ID_PATTERN.fullmatch(tenant):
            raise ValueError(
                "WEBHOOKS_API_KEYS must look like tenant_a:key_a,tenant_b:key_b:emit "
                "(tenant ids use letters, digits, '_' and '-'; scopes, optional, are joined with '+')"
            )
        key, scopes = rest, ALL_SCOPES
        head, colon, tail = rest.rpartition(":")
        if colon and head and _SCOPE_LIST.fullmatch(tail):
            try:
                key, scopes = head, parse_scopes(tail)
            except ValueError:
                # Not quoted: it may be the end of a key that has a ':' in it.
                known = ", ".join(s.value for s in Scope)
                raise ValueError(
                    f"WEBHOOKS_API_KEYS: the entry of tenant {tenant} ends with an unknown scope (scopes "
                    f"are {known}, joined with '+'; a key itself has no ':' followed by lowercase letters)"
                ) from None
        if key in grants:
            raise ValueError(
                f"WEBHOOKS_API_KEYS gives one key to two tenants ({grants[key].tenant}, {tenant})"
            )
        grants[key] = KeyGrant(tenant, scopes)
    return grants


def parse_api_keys(value: str) -> dict[str, str]:
    """`"tenant_a:key_a,tenant_b:key_b"` → `{"key_a": "tenant_a", "key_b": "tenant_b"}`."""
    return {key: grant.tenant for key, grant in parse_key_grants(value).items()}


_ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")


def parse_origins(value: str) -> tuple[str, ...]:
    """`"https://app.example.com, http://localhost:3000"` → each origin, checked: scheme://host[:port]."""
    origins: list[str] = []
    for entry in filter(None, (e.strip() for e in value.split(","))):
        origin = entry.lower()
        match = _ORIGIN.fullmatch(origin)
        if match is None or not 1 <= int(match["port"] or 443) <= 65535:
            raise ValueError(
                f"WEBHOOKS_PORTAL_FRAME_ANCESTORS: {entry!r} is not an origin; list each as "
                "scheme://host[:port] (http or https, no path, no '*'), separated by commas"
            )
        # As a browser spells it (`event.origin`, which the dashboard compares): no default port.
        for default in ("http://", ":80"), ("https://", ":443"):
            if origin.startswith(default[0]) and origin.endswith(default[1]):
                origin = origin.removesuffix(default[1])
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)

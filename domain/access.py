"""Who may do what: the scopes of the API, and the caller a request is made by.

A credential is an API key of `WEBHOOKS_API_KEYS` or a portal session token (core/sessions.py); either
resolves to a `Principal`: a tenant and the scopes it holds. Each /v1 route declares the one scope it
needs (api/deps.py), so what a credential can reach is decided in one place per route.

| scope    | grants                                                                            |
|----------|-----------------------------------------------------------------------------------|
| `emit`   | `POST /v1/events`                                                                 |
| `read`   | reading endpoints (never their secrets), events, deliveries, stats, event types   |
| `manage` | changing endpoints, reading their secrets, retrying deliveries; implies `read`    |
| `portal` | opening and revoking portal sessions for the dashboard (sessions get `manage`)    |

An API key holds every scope unless its entry names some (`tenant:key:emit`); a portal session holds
`manage` and `read`, or `read` alone, and never `emit` or `portal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.appearance import Appearance


class Scope(StrEnum):
    EMIT = "emit"
    READ = "read"
    MANAGE = "manage"
    PORTAL = "portal"


ALL_SCOPES = frozenset(Scope)
# Managing endpoints without seeing them makes no sense: a key (or session) that manages also reads.
IMPLIED = {Scope.MANAGE: frozenset({Scope.READ})}
SESSION_SCOPES = frozenset({Scope.MANAGE, Scope.READ})
READ_ONLY_SESSION_SCOPES = frozenset({Scope.READ})
# How scopes are joined in a key's entry: `tenant:key:emit+read`. Not ',' (between entries) nor ':'.
SCOPE_SEPARATOR = "+"


def expand(scopes: frozenset[Scope]) -> frozenset[Scope]:
    """`scopes` with what each implies."""
    return scopes.union(*(IMPLIED.get(scope, frozenset()) for scope in scopes))


def parse_scopes(value: str) -> frozenset[Scope]:
    """`"emit+read"` → `{EMIT, READ}`; ValueError naming an unknown one."""
    names = [name.strip() for name in value.split(SCOPE_SEPARATOR)]
    known = [s.value for s in Scope]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r} (scopes are {', '.join(known)}, joined with '+')")
    return expand(frozenset(Scope(name) for name in names))


def describe(scopes: frozenset[Scope]) -> str:
    """`"manage, read"`: scopes in a stable order, for messages."""
    return ", ".join(s.value for s in Scope if s in scopes) or "none"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request: its tenant, its scopes and, for a portal session, the session's id and end."""

    tenant: str
    scopes: frozenset[Scope]
    session_id: str | None = None
    expires_at: datetime | None = None
    key_id: str | None = None  # an API key's name that does not hold it (service/access.py's `key_ids`)
    other_key_ids: tuple[str, ...] = ()  # its names under the encryption keys other than the current one
    # A portal session's look, as the product that opened it asked (domain/appearance.py).
    appearance: Appearance | None = None

    @property
    def is_session(self) -> bool:
        return self.session_id is not None

    @property
    def credential(self) -> str:
        """The credential the request was made with, named without its secret (the door's limits are
        counted per credential): `key:{hash}` or `session:{id}`."""
        if self.session_id is not None:
            return f"session:{self.session_id}"
        return f"key:{self.key_id}" if self.key_id else f"tenant:{self.tenant}"

    @property
    def credentials(self) -> tuple[str, ...]:
        """Every name of the credential, `credential` first: an API key's under each encryption key, so
        that what one replica keeps under it another finds while they differ in their current key."""
        return (self.credential, *(f"key:{other}" for other in self.other_key_ids if not self.is_session))

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def lacks(self, scope: Scope) -> str:
        """What to say when this caller lacks `scope`: what it is, what it has, what to do."""
        if self.is_session:
            if scope is Scope.EMIT:
                advice = "events are emitted by your backend, with an API key that has the emit scope"
            elif scope is Scope.MANAGE:
                advice = "this session is read-only; the product that opened it can open one that manages"
            else:
                advice = "sessions are opened by your backend, with an API key that has the portal scope"
            return f"a portal session cannot do this: it needs the {scope.value} scope ({advice})"
        return (
            f"this API key lacks the {scope.value} scope this route needs (it has: {describe(self.scopes)}); "
            f"use a key whose entry in WEBHOOKS_API_KEYS grants {scope.value}"
        )

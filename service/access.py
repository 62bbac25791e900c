"""Who is calling: the tenant and scopes of an API key, and portal sessions (open, revoke, authenticate).

A portal session lets the dashboard act for one tenant in a browser that never holds an API key: the
tenant's backend opens one with a key that has the `portal` scope, and gives its token to the browser.
Tokens are signed and stored nowhere (core/sessions.py); a session ended early is listed in the store
until it would have expired anyway, and every request with a token looks there, so a revocation holds
on every API replica at once. A session lives only while the API key that opened it is configured
with the `portal` scope: its token names that key (`key_id`). A token that expired, was revoked, was
not made by us, or whose key is gone is `Unauthenticated`, with a message that says which.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from core.sessions import (
    MAX_SESSION_SECONDS,
    SESSION_ID,
    SessionTokenError,
    is_session_id_of,
    issue,
    read,
)
from core.settings import Settings
from domain.access import READ_ONLY_SESSION_SCOPES, SESSION_SCOPES, Principal, Scope
from domain.appearance import Appearance, origin_of
from service.boundary import boundary, in_store
from service.errors import InvalidInput, NotFound, Unauthenticated
from service.models import OpenedSession
from store.database import EndpointStore

BEARER_CHALLENGE = 'Bearer realm="flexprice-webhooks", error="invalid_token"'
REVOKED = (
    "this portal session was revoked; open the webhooks page again from the product you came from to "
    "start a new one"
)


def principal_for_key(settings: Settings, api_key: str | None) -> Principal | None:
    """The caller `api_key` stands for, or None; keys are compared in constant time."""
    if api_key:
        for key, grant in settings.key_grants.items():
            if hmac.compare_digest(key.encode(), api_key.encode()):
                current, *others = key_ids(settings, api_key)
                return Principal(
                    tenant=grant.tenant, scopes=grant.scopes, key_id=current, other_key_ids=tuple(others)
                )
    return None


def key_ids(settings: Settings, api_key: str) -> tuple[str, ...]:
    """Names for an API key that say nothing of it, the same in every API replica: HMACs of it with keys
    derived from the encryption keys (a plain hash of a weak key could be reversed from the store), one
    for each, the current key's first. The store keeps things under the first, and finds them under any:
    a replica that has a new key first and one that has it second find the same (in the documented
    order, no replica without the new key runs beside one that has it first)."""
    return tuple(
        hmac.new(key, api_key.encode(), hashlib.sha256).hexdigest()[:32] for key in settings.credential_keys
    )


class PortalSessions:
    def __init__(self, store: EndpointStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        # The API keys by their names: a session lives only while the key that opened it does.
        self._grants_by_id = {
            name: grant for key, grant in settings.key_grants.items() for name in key_ids(settings, key)
        }

    def open(
        self,
        opened_by: Principal,
        *,
        expires_in: int | None,
        read_only: bool,
        appearance: Appearance | None = None,
    ) -> OpenedSession:
        """A new session of `opened_by`'s tenant, `expires_in` seconds long (the setting's default when
        None), valid while the API key `opened_by` called with is configured and has the portal scope,
        looking as `appearance` says (checked by domain/appearance.py; its logo's origin here)."""
        assert opened_by.key_id is not None, "a portal session is opened with an API key"
        lifetime = self._settings.portal_session_seconds if expires_in is None else expires_in
        if not 1 <= lifetime <= MAX_SESSION_SECONDS:
            raise InvalidInput(
                f"expires_in must be 1 to {MAX_SESSION_SECONDS} seconds",
                field=("expires_in",),
                value=lifetime,
            )
        if appearance is not None and appearance.logo_url is not None:
            self._check_logo_origin(appearance.logo_url)
        claims, token = issue(
            self._settings.portal_session_keys[0],
            tenant=opened_by.tenant,
            scopes=READ_ONLY_SESSION_SCOPES if read_only else SESSION_SCOPES,
            lifetime_seconds=lifetime,
            issuer=self._settings.jwt_issuer,
            credential=opened_by.key_id,
            appearance=appearance,
        )
        return OpenedSession(
            id=claims.id,
            token=token,
            expires_at=claims.expires_at,
            read_only=read_only,
            appearance=claims.appearance,
        )

    def _check_logo_origin(self, logo_url: str) -> None:
        # The dashboard's Content-Security-Policy lets it show images of its own origin and of the
        # origins that may frame it (api/main.py): a logo anywhere else would be a broken image.
        allowed = self._settings.frame_ancestors
        if origin_of(logo_url) not in allowed:
            listed = ", ".join(allowed) if allowed else "none yet"
            raise InvalidInput(
                f"logo_url must be served from an origin listed in WEBHOOKS_PORTAL_FRAME_ANCESTORS ("
                f"{listed}), which the dashboard may load images from: serve the logo from your own "
                f"product's origin, or ask the operator to list {origin_of(logo_url)}",
                field=("appearance", "logo_url"),
                value=logo_url,
            )

    @boundary
    async def revoke(self, tenant: str, session_id: str) -> None:
        """End `session_id` of `tenant` now. Sessions are stored nowhere, so any well-formed id is taken;
        one of another tenant's sessions is unaffected (a revocation is kept under its tenant)."""
        if not SESSION_ID.fullmatch(session_id):
            raise InvalidInput(
                "a portal session id is ps_ followed by 24 hex digits, as POST /v1/portal/sessions gave it",
                field=("session_id",),
                value=session_id,
                location="path",
            )
        if not is_session_id_of(self._settings.portal_session_keys, tenant, session_id):
            # Ids are not stored, but each carries a MAC: any other id would be kept for nothing.
            raise NotFound(
                f"no portal session {session_id} of yours: revoke one by the id POST /v1/portal/sessions "
                "gave it (a session opened before this version ended with its key's check anyway)"
            )
        # No session outlives this: its expiry is at most MAX_SESSION_SECONDS after it opened.
        until = datetime.now(UTC) + timedelta(seconds=MAX_SESSION_SECONDS)
        await in_store(self._store.session_revocations.revoke, tenant, session_id, until=until)

    @boundary
    async def authenticate(self, token: str) -> Principal:
        """The caller a session token stands for; `Unauthenticated` saying why not."""
        try:
            claims = read(self._settings.portal_session_keys, token, issuer=self._settings.jwt_issuer)
        except SessionTokenError as err:
            raise Unauthenticated(err.message, challenge=BEARER_CHALLENGE) from None
        grant = self._grants_by_id.get(claims.credential)
        if grant is None or grant.tenant != claims.tenant or Scope.PORTAL not in grant.scopes:
            # Removed, or given to another tenant or without the portal scope since: the sessions it
            # opened end with it, in every replica that runs without it.
            raise Unauthenticated(
                "the API key that opened this portal session was removed or may no longer open sessions; "
                "ask the product you came from to open a new one",
                challenge=BEARER_CHALLENGE,
            )
        if await in_store(self._store.session_revocations.is_revoked, claims.tenant, claims.id):
            raise Unauthenticated(REVOKED, challenge=BEARER_CHALLENGE)
        return Principal(
            tenant=claims.tenant,
            scopes=claims.scopes,
            session_id=claims.id,
            expires_at=claims.expires_at,
            appearance=claims.appearance,
        )

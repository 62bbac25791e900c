"""Portal session tokens: the dashboard for one tenant, for a while, in a browser that holds no API key.

A token is a JWT (HS256, through PyJWT) signed with the first of `Settings.portal_session_keys`, keys
derived from the encryption keys, and checked against each: every API replica checks it alike, also
while a new encryption key is being given to them, no tenant can make one, and no token is stored
anywhere. Its claims: `sub` the tenant, `jti` the session's id (what a revocation names), `scope`
(space-separated, `manage read` or `read`), `iat` and `exp`, `iss`, and `aud`, which no other token of
ours carries; `look`, when the product that opened the session asked for one, its title, accent colour
and logo (domain/appearance.py), signed so that what that product asked wins over anything a link adds
(the page's `?title=`, `?logo=` and `?accent=` only fill in what the session leaves unset).
Revocation is a list in the endpoint store (service/access.py); removing or retiring an encryption key
(`WEBHOOKS_ENCRYPTION_KEYS_RETIRED`) ends the sessions signed with a key derived from it, as it ends list
cursors.

`read` checks the signature before anything else, so "expired" is said only of a token we made.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from domain.access import SESSION_SCOPES, Scope, describe
from domain.appearance import Appearance, check_accent_color, check_logo_url, check_title

MAX_SESSION_SECONDS = 86_400
# How far ahead of this process's clock another replica's may be when it issues a token.
CLOCK_SKEW = timedelta(seconds=60)
SESSION_ID = re.compile(r"ps_[0-9a-f]{24}")
AUDIENCE = "flexprice-webhooks:portal-session"
ALGORITHM = "HS256"
# The parts every token has; one without them was not made here.
# `cred`: a token made before sessions were bound to the key that opened them is not valid.
_REQUIRED = ["sub", "jti", "scope", "iat", "exp", "aud", "iss", "cred"]


class SessionTokenError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SessionExpired(SessionTokenError):
    pass


class SessionInvalid(SessionTokenError):
    pass


@dataclass(frozen=True, slots=True)
class SessionClaims:
    id: str
    tenant: str
    scopes: frozenset[Scope]
    issued_at: datetime
    expires_at: datetime
    # The API key that opened it, by its first name (service/access.py's `key_ids`): the session ends with it.
    credential: str
    appearance: Appearance | None = None


def new_session_id(key: bytes, tenant: str) -> str:
    """`ps_` and 24 hex digits: 12 random, then 12 of a MAC of them and the tenant, so that an id can be
    told ours (and the tenant's) without storing it (`is_session_id_of`)."""
    nonce = secrets.token_hex(6)
    return f"ps_{nonce}{_id_mac(key, tenant, nonce)}"


def is_session_id_of(keys: tuple[bytes, ...], tenant: str, session_id: str) -> bool:
    """Whether `session_id` is one this service made for `tenant` with one of `keys`: a revocation is kept
    only for those."""
    body = session_id.removeprefix("ps_")
    if len(body) != 24 or body == session_id:
        return False
    return any(hmac.compare_digest(body[12:], _id_mac(key, tenant, body[:12])) for key in keys)


def _id_mac(key: bytes, tenant: str, nonce: str) -> str:
    return hmac.new(key, f"portal session id:{tenant}:{nonce}".encode(), hashlib.sha256).hexdigest()[:12]


def issue(
    key: bytes,
    *,
    tenant: str,
    scopes: frozenset[Scope],
    lifetime_seconds: int,
    issuer: str,
    credential: str,
    appearance: Appearance | None = None,
    now: datetime | None = None,
) -> tuple[SessionClaims, str]:
    """A new session's claims and its token."""
    if not scopes or not scopes <= SESSION_SCOPES:
        raise ValueError(f"a portal session holds manage and read, or read: not {describe(scopes)}")
    if not 1 <= lifetime_seconds <= MAX_SESSION_SECONDS:
        raise ValueError(f"a portal session lasts 1 to {MAX_SESSION_SECONDS} seconds")
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    claims = SessionClaims(
        id=new_session_id(key, tenant),
        tenant=tenant,
        scopes=scopes,
        issued_at=issued,
        expires_at=issued + timedelta(seconds=lifetime_seconds),
        credential=credential,
        appearance=None if appearance is None or appearance.empty else appearance,
    )
    payload: dict[str, Any] = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": tenant,
        "jti": claims.id,
        "scope": " ".join(s.value for s in Scope if s in scopes),
        "iat": int(claims.issued_at.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "cred": credential,
    }
    if claims.appearance is not None:
        look = {
            "title": claims.appearance.title,
            "accent": claims.appearance.accent_color,
            "logo": claims.appearance.logo_url,
        }
        payload["look"] = {name: value for name, value in look.items() if value is not None}
    return claims, jwt.encode(payload, key, algorithm=ALGORITHM)


def _appearance(look: object) -> Appearance | None:
    """The `look` claim read back, checked again (a token outlives a release that might check more)."""
    if look is None:
        return None
    if not isinstance(look, dict):
        raise ValueError("look is not an object")
    title, accent, logo = look.get("title"), look.get("accent"), look.get("logo")
    return Appearance(
        title=None if title is None else check_title(str(title)),
        accent_color=None if accent is None else check_accent_color(str(accent)),
        logo_url=None if logo is None else check_logo_url(str(logo)),
    )


INVALID = (
    "invalid portal session token: this service did not sign it, it was changed, or it was signed with a "
    "key derived from an encryption key since removed or retired; ask the product that opened this page "
    "for a new session"
)


def _signed_by_one_of(keys: tuple[bytes, ...], token: str, *, issuer: str) -> dict[str, Any]:
    for key in keys:
        try:
            # Time is checked by `read` against its `now`, once the signature has proved the token ours.
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=issuer,
                options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            continue  # signed with another of the keys, or by no one we know
        except jwt.PyJWTError:
            break  # malformed, or ours but not a session's: the same under every key
        return payload
    raise SessionInvalid(INVALID)


def read(keys: tuple[bytes, ...], token: str, *, issuer: str, now: datetime | None = None) -> SessionClaims:
    """The claims of a token we signed with one of `keys` and that has not expired; `SessionInvalid` or
    `SessionExpired`."""
    payload = _signed_by_one_of(keys, token, issuer=issuer)
    try:
        scopes = frozenset(Scope(name) for name in str(payload["scope"]).split())
        claims = SessionClaims(
            id=str(payload["jti"]),
            tenant=str(payload["sub"]),
            scopes=scopes,
            issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            credential=str(payload["cred"]),
            appearance=_appearance(payload.get("look")),
        )
    except (ValueError, TypeError, OverflowError):
        raise SessionInvalid(INVALID) from None
    if not scopes or not scopes <= SESSION_SCOPES:
        raise SessionInvalid(INVALID)
    now = now or datetime.now(UTC)
    # What `issue` never makes: a session longer than MAX_SESSION_SECONDS (a revocation is kept that
    # long), one issued in the future, an id not of our form. Only a token forged with a leaked key is.
    lifetime = (claims.expires_at - claims.issued_at).total_seconds()
    if not 0 < lifetime <= MAX_SESSION_SECONDS or claims.issued_at > now + CLOCK_SKEW:
        raise SessionInvalid(INVALID)
    if not SESSION_ID.fullmatch(claims.id):
        raise SessionInvalid(INVALID)
    if now >= claims.expires_at:
        raise SessionExpired(
            f"this portal session expired at {claims.expires_at.isoformat().replace('+00:00', 'Z')}; "
            "open the webhooks page again from the product you came from to start a new one"
        )
    return claims

"""core/sessions.py: portal session tokens as issued and read, against a clock of the test's choosing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from core.sessions import SessionClaims, SessionExpired, SessionInvalid, is_session_id_of, issue, read
from domain.access import ALL_SCOPES, READ_ONLY_SESSION_SCOPES, SESSION_SCOPES, Scope
from domain.appearance import Appearance

KEY = b"portal session key of thirty-two"
OTHER = b"another key, also thirty-two byte"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _issue(**changes: Any) -> tuple[SessionClaims, str]:
    """A session of acme's, manage and read, for 60 s from NOW, issued by "i" for its credential "k1";
    `changes` say what differs."""
    options: dict[str, Any] = {
        "tenant": "acme",
        "scopes": SESSION_SCOPES,
        "lifetime_seconds": 60,
        "issuer": "i",
        "credential": "k1",
        "now": NOW,
    }
    return issue(KEY, **{**options, **changes})


def test_a_token_reads_back_as_issued_until_it_expires() -> None:
    claims, token = _issue()
    assert claims.expires_at == NOW + timedelta(seconds=60)
    assert read((KEY,), token, issuer="i", now=NOW + timedelta(seconds=59)) == claims
    with pytest.raises(SessionExpired, match="expired at 2026-11-27T12:01:00Z"):
        read((KEY,), token, issuer="i", now=NOW + timedelta(seconds=60))


def test_a_session_id_is_known_as_ours_and_its_tenant_s_without_being_stored() -> None:
    claims, _ = _issue()
    assert re.fullmatch(r"ps_[0-9a-f]{24}", claims.id)
    assert is_session_id_of((KEY,), "acme", claims.id)
    assert not is_session_id_of((KEY,), "other", claims.id)  # another tenant's
    assert not is_session_id_of((OTHER,), "acme", claims.id)
    flipped = claims.id[:-1] + ("0" if claims.id[-1] != "0" else "1")
    for made_up in ("ps_" + "0" * 24, flipped, claims.id.removeprefix("ps_"), "ps_" + claims.id[3:15]):
        assert not is_session_id_of((KEY,), "acme", made_up), made_up


def test_a_token_and_its_id_read_back_under_any_key_of_the_ring() -> None:
    """Signed with the key of one replica's current encryption key, read by a replica that lists that
    encryption key second, or first: mid-rotation, in either order (docs/data-protection.md, "Keys")."""
    claims, token = _issue()
    for keys in ((OTHER, KEY), (KEY, OTHER)):
        assert read(keys, token, issuer="i", now=NOW) == claims
        assert is_session_id_of(keys, "acme", claims.id)
    with pytest.raises(SessionInvalid):
        read((OTHER, b"a third key, thirty-two bytes ..."), token, issuer="i", now=NOW)
    # One of ours, but not a session's, under either key: invalid, whichever key is tried first.
    forged = jwt.encode({"aud": "something else"}, KEY, algorithm="HS256")
    with pytest.raises(SessionInvalid):
        read((OTHER, KEY), forged, issuer="i", now=NOW)


def test_expired_is_said_only_of_a_token_we_signed() -> None:
    _, token = _issue(lifetime_seconds=1)
    later = NOW + timedelta(hours=1)
    with pytest.raises(SessionInvalid):
        read((OTHER,), token, issuer="i", now=later)
    with pytest.raises(SessionInvalid):
        read((KEY,), token, issuer="another issuer", now=later)


def test_another_token_of_ours_does_not_pass_for_a_session() -> None:
    _, token = _issue()
    claims = jwt.decode(token, options={"verify_signature": False})
    for changed in ({"aud": "something else"}, {"scope": "emit read"}, {"scope": ""}, {"scope": "root"}):
        forged = jwt.encode({**claims, **changed}, KEY, algorithm="HS256")
        with pytest.raises(SessionInvalid):
            read((KEY,), forged, issuer="i", now=NOW)
    for name in ("jti", "cred"):  # without `cred`: made before sessions ended with their key
        missing = {claim: value for claim, value in claims.items() if claim != name}
        with pytest.raises(SessionInvalid):
            read((KEY,), jwt.encode(missing, KEY, algorithm="HS256"), issuer="i", now=NOW)


def test_a_session_holds_manage_and_read_or_read_alone() -> None:
    _, token = _issue(scopes=READ_ONLY_SESSION_SCOPES)
    assert read((KEY,), token, issuer="i", now=NOW).scopes == {Scope.READ}
    for scopes in (ALL_SCOPES, frozenset({Scope.EMIT}), frozenset()):
        with pytest.raises(ValueError):
            _issue(scopes=scopes)
    for seconds in (0, 86_401):
        with pytest.raises(ValueError):
            _issue(lifetime_seconds=seconds)


def test_a_sessions_appearance_is_signed_into_its_token_and_read_back() -> None:
    look = Appearance(title="Acme webhooks", accent_color="#0f9d58", logo_url="https://acme.test/l.svg")
    claims, token = _issue(appearance=look)
    assert read((KEY,), token, issuer="i", now=NOW).appearance == look
    # Nothing asked: no claim at all, and an older token without one reads as the dashboard's own look.
    bare, bare_token = _issue(appearance=Appearance())
    assert "look" not in jwt.decode(bare_token, options={"verify_signature": False})
    assert read((KEY,), bare_token, issuer="i", now=NOW).appearance is None


def test_a_look_claim_that_would_not_pass_the_api_makes_the_token_invalid() -> None:
    # Signed with our key but made by hand (or by an older release that checked less): refused, not shown.
    payload = jwt.decode(
        _issue(credential="k")[1],
        options={"verify_signature": False},
    )
    for look in ({"title": "<img src=x>"}, {"accent": "red;}"}, {"logo": "javascript:alert(1)"}, "x"):
        token = jwt.encode({**payload, "look": look}, KEY, algorithm="HS256")
        with pytest.raises(SessionInvalid):
            read((KEY,), token, issuer="i", now=NOW)


def test_what_issue_never_makes_is_refused_even_when_signed_with_our_key() -> None:
    """A token forged with a leaked key (an attack session made one lasting 10 years): longer than a
    session may last, which outlives its revocation (kept MAX_SESSION_SECONDS), issued in the future, or
    with an id not of ours, is refused."""
    _, token = _issue()
    claims = jwt.decode(token, options={"verify_signature": False})
    iat = claims["iat"]
    for changed in (
        {"exp": iat + 10 * 365 * 86_400},
        {"exp": iat + 86_401},
        {"exp": iat},
        {"iat": iat + 3600, "exp": iat + 3660},
        {"jti": "anything"},
    ):
        forged = jwt.encode({**claims, **changed}, KEY, algorithm="HS256")
        with pytest.raises(SessionInvalid):
            read((KEY,), forged, issuer="i", now=NOW)
    # A replica whose clock runs up to a minute ahead issues tokens this one takes.
    ahead = jwt.encode({**claims, "iat": iat + 50, "exp": iat + 110}, KEY, algorithm="HS256")
    assert read((KEY,), ahead, issuer="i", now=NOW).expires_at == NOW + timedelta(seconds=110)

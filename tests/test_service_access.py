"""service/access.py: an API key's names, as replicas that differ in their current encryption key give
them (mid-rotation, docs/data-protection.md, "Keys"); end to end in tests/test_key_rotation.py."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from core.crypto import new_key_entry
from core.settings import Settings
from service.access import principal_for_key

API_KEY, BETA_KEY = "key_of_acme_" + "x" * 20, "key_of_beta_" + "z" * 20
OLD, NEW = new_key_entry("old"), new_key_entry("new")


def _settings(encryption_keys: str, retired: str = "") -> Settings:
    return Settings(
        encryption_keys=SecretStr(encryption_keys),
        api_keys=SecretStr(f"acme:{API_KEY},beta:{BETA_KEY}"),
        encryption_keys_retired=retired,
    )


def test_an_api_key_is_named_under_each_encryption_key_the_current_one_s_first() -> None:
    before, second, first = (_settings(keys) for keys in (OLD, f"{OLD},{NEW}", f"{NEW},{OLD}"))
    names = {}
    for label, settings in (("before", before), ("second", second), ("first", first)):
        principal = principal_for_key(settings, API_KEY)
        assert principal is not None and principal.tenant == "acme"
        names[label] = principal.credentials
        assert principal.credentials[0] == principal.credential == f"key:{principal.key_id}"
    # Kept under a replica's first name, found by every replica that runs beside it in the documented
    # order: before beside second, second beside first.
    assert names["before"] == names["second"][:1] and names["second"][0] in names["first"]
    assert names["first"] == names["second"][::-1]
    # The names say nothing of the key, and another key has others.
    beta = principal_for_key(first, BETA_KEY)
    assert beta is not None and not set(beta.credentials) & set(names["first"])
    assert all(API_KEY not in name for name in names["first"])
    assert principal_for_key(first, "key_of_nobody_" + "y" * 20) is None


def test_a_retired_key_signs_nothing_that_is_accepted_and_only_an_old_one_may_be_retired() -> None:
    """After a leak: the old key kept to decrypt, retired: sessions and cursors made with it end at once."""
    kept, retired = _settings(f"{NEW},{OLD}"), _settings(f"{NEW},{OLD}", retired="old")
    assert len(kept.portal_session_keys) == len(kept.cursor_keys) == 2
    assert retired.portal_session_keys == kept.portal_session_keys[:1]
    assert retired.cursor_keys == kept.cursor_keys[:1]
    # An API key keeps its names: finding what is kept under them is no trust in the key.
    assert retired.credential_keys == kept.credential_keys
    for value, says in (("new", "the first key, which encrypts"), ("gone", "does not list")):
        wrong = _settings(f"{NEW},{OLD}", retired=value)
        with pytest.raises(SystemExit, match=says):
            _ = wrong.portal_session_keys

"""The keyring read from WEBHOOKS_ENCRYPTION_KEYS: which key encrypts, which keys decrypt, and what the
keys derived from it (portal sessions, list cursors) are made from."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from core.crypto import DecryptionError, Keyring, new_key_entry


def _raw(entry: str) -> bytes:
    return base64.b64decode(entry.partition(":")[2])


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    new, old = new_key_entry("k2"), new_key_entry("k1")
    before = Keyring.parse(old)
    kid, sealed = before.encrypt(b"secret", b"aad")
    after = Keyring.parse(f"{new},{old}")
    assert (kid, after.current) == ("k1", "k2")
    assert after.decrypt(kid, sealed, b"aad") == b"secret"
    with pytest.raises(DecryptionError):
        after.decrypt(kid, sealed, b"other aad")


def test_derived_keys_come_from_the_current_key() -> None:
    new, old = new_key_entry("k2"), new_key_entry("k1")
    derived = Keyring.parse(f" {new} , {old} ").derive("purpose")
    assert derived == hmac.new(_raw(new), b"purpose", hashlib.sha256).digest()


@pytest.mark.parametrize("shape", ["{empty},{key}", "{key},{empty}", "{key},,{key2}"])
def test_an_empty_entry_is_refused_rather_than_guessed_around(shape: str) -> None:
    """`"$NEW,$OLD"` with $NEW unset once made the derived keys HMACs under an empty key: anyone could
    have signed a portal session. Refused, saying why."""
    value = shape.format(empty="", key=new_key_entry("k1"), key2=new_key_entry("k2"))
    with pytest.raises(ValueError, match="empty entry .*is a variable in it unset"):
        Keyring.parse(value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "lists no key"),
        ("k1", "must look like key_id:base64key"),
        ("k1:not base64!", "not valid base64"),
        ("k1:" + base64.b64encode(bytes(16)).decode(), "must be 32 bytes"),
    ],
)
def test_a_malformed_keyring_says_what_to_fix(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Keyring.parse(value)


def test_a_key_listed_twice_is_refused() -> None:
    entry = new_key_entry("k1")
    with pytest.raises(ValueError, match="listed twice"):
        Keyring.parse(f"{entry},{entry}")

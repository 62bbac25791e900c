"""The rules `service.endpoints` applies on its own, before the store."""

from __future__ import annotations

import base64
import secrets

import pytest

from service.endpoints import checked_secret
from service.errors import InvalidInput


def test_a_secret_of_your_own_is_whsec_and_base64_of_24_to_64_bytes() -> None:
    for size in (24, 64):
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()
        assert checked_secret(secret) == secret


@pytest.mark.parametrize("raw", [bytes(32), b"\xab" * 24, b"abcd" * 8, bytes(range(11)) * 3])
def test_a_secret_that_is_not_random_is_refused_with_how_to_make_one(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as refused:
        checked_secret("whsec_" + base64.b64encode(raw).decode())
    assert f"secret is not random: its {len(raw)} bytes take only {len(set(raw))} values" in (
        refused.value.message
    )
    assert "secrets.token_bytes(32)" in refused.value.message


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(bytes(23)).decode(),  # too short
        "whsec_" + base64.b64encode(bytes(65)).decode(),  # too long
        base64.b64encode(bytes(32)).decode(),  # no prefix
        "whsec_not base64!",
        "whsec_ünïcödé" + "A" * 40,  # not ASCII: found by the schema fuzzer as a 500
        "",
    ],
)
def test_any_other_secret_is_refused_with_what_to_send(secret: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        checked_secret(secret)
    assert "whsec_ followed by the base64 of 24 to 64 random bytes" in refused.value.message
    assert refused.value.field == ("secret",)

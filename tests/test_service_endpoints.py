"""The rules `service.endpoints` applies on its own, before the store; a delete that cannot reach
Temporal to end the endpoint's lanes."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.service import RetryConfig

from core.settings import Settings
from launcher import free_port
from service.endpoints import Endpoints, checked_secret
from service.errors import InvalidInput
from service.lanes import Lanes
from store.database import EndpointStore
from store.keys import jwt_signer
from tests.conftest import NOWHERE, TEST_ENCRYPTION_KEYS, add_endpoint

NO_RETRIES = RetryConfig(max_retries=0)


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


async def test_deleting_an_endpoint_while_temporal_is_unreachable_still_deletes_it(
    store: EndpointStore,
) -> None:
    """Its lanes are told after the delete, on a best-effort basis: Temporal unreachable (a real client to
    a port where nothing listens) is logged, and the delete, already made, is answered as made."""
    client = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, retry_config=NO_RETRIES)
    lanes = Lanes(client, store, rpc_timeout=timedelta(seconds=1))
    endpoints = Endpoints(
        store,
        allow_private_urls=True,
        disable_after=timedelta(days=5),
        tell=_tell_nothing,
        keys=jwt_signer(Settings(api_keys="t:k", encryption_keys=TEST_ENCRYPTION_KEYS), store).keys,
        end_lanes=lanes.end,
    )
    created = add_endpoint(store, "t", url=NOWHERE, ordered=True)
    await endpoints.delete("t", created.id)
    assert store.get("t", created.id) is None


async def _tell_nothing(_tenant: str, _endpoint_id: str) -> None:
    pass

"""The keyring read from WEBHOOKS_ENCRYPTION_KEYS: which key encrypts, which keys decrypt, and what the
keys derived from it (portal sessions, list cursors) are made from; and what the payload codec writes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import zlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import WorkflowSerializationContext

from core import crypto
from core.crypto import (
    BOUND_TO,
    KEY_ID,
    SHORT_KEY_ID,
    WORKFLOW_ID,
    DecryptionError,
    EncryptionCodec,
    Keyring,
    new_key_entry,
)
from core.settings import Settings
from core.temporal import connect
from domain.catalog import EVENT_TYPES_BY_NAME
from launcher import free_port


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


def test_derived_keys_come_from_every_key_the_current_keys_first() -> None:
    new, old = new_key_entry("k2"), new_key_entry("k1")
    derived = Keyring.parse(f" {new} , {old} ").derive("purpose")
    assert derived == tuple(hmac.new(_raw(k), b"purpose", hashlib.sha256).digest() for k in (new, old))
    assert Keyring.parse(old).derive("purpose") == derived[1:]
    assert Keyring.parse(f"{old},{new}").derive("purpose") == derived[::-1]
    # A retired key decrypts only: nothing is derived from it; the current key cannot be retired.
    assert Keyring.parse(f"{new},{old}").derive("purpose", retired={"k1"}) == derived[:1]
    with pytest.raises(AssertionError):
        Keyring.parse(f"{new},{old}").derive("purpose", retired={"k2"})
    # The keyring's repr shows no key (it showed the current one's bytes).
    assert all(str(_raw(k)) not in repr(Keyring.parse(f"{new},{old}")) for k in (new, old))


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
        # Accepted until an attack session tried it: anyone could guess it.
        ("k1:" + base64.b64encode(bytes(32)).decode(), "k1 is not random: its 32 bytes take only 1 values"),
        ("k1:" + base64.b64encode(b"0123456789abcde" * 2 + b"01").decode(), "take only 15 values"),
    ],
)
def test_a_malformed_keyring_says_what_to_fix(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Keyring.parse(value)


def test_a_weak_key_listed_after_a_new_first_one_decrypts_and_signs_nothing() -> None:
    """The way off a weak key (refused anywhere, a deployment on one could neither start nor rotate)."""
    weak = "k1:" + base64.b64encode(bytes(32)).decode()
    # Sealed by a version that took the all-zero key as its only one.
    kid, sealed = Keyring({"k1": AESGCM(bytes(32))}, "k1", (bytes(32),)).encrypt(b"secret", b"aad")
    after = Keyring.parse(f"{new_key_entry('k2')},{weak}")
    assert after.decrypt(kid, sealed, b"aad") == b"secret"
    assert len(after.derive("purpose")) == 1  # the new key's only: nothing anyone could sign


def test_a_key_listed_twice_is_refused() -> None:
    entry = new_key_entry("k1")
    with pytest.raises(ValueError, match="listed twice"):
        Keyring.parse(f"{entry},{entry}")


# The payload codec: compression (issue 25, 3). An event's body is most of what a delivery's history holds.
_CONTEXT = WorkflowSerializationContext(namespace="default", workflow_id="delivery:t:evt_1:ep_1")


def _body_payload() -> Payload:
    event = {
        "webhook_type": "invoice.created",
        "data": {"object": EVENT_TYPES_BY_NAME["invoice.created"].example},
    }
    return pydantic_data_converter.payload_converter.to_payloads([{"body": json.dumps(event)}])[0]


async def _sealed(codec: EncryptionCodec, payload: Payload) -> Payload:
    return (await codec.with_context(_CONTEXT).encode([payload]))[0]


def _opened_as_before_compression(keyring: Keyring, sealed: Payload) -> Payload:
    """What a process of a version before compression did with a sealed payload."""
    plain = keyring.decrypt(
        sealed.metadata[KEY_ID].decode(), sealed.data, b"workflow:" + sealed.metadata[WORKFLOW_ID]
    )
    payload = Payload()
    payload.ParseFromString(plain)
    return payload


def _opened_as_before_short_metadata(keyring: Keyring, sealed: Payload, workflow_id: str) -> Payload:
    """What the codec of the version before 8ecde3a did with a payload read in `workflow_id`'s context:
    its `_decrypt`, as it was. Its ForeignPayload is a DecryptionError, which that version's
    `read_event_input` took for an event no longer kept: an attempt then sent nothing, a lane skipped."""
    if sealed.metadata.get("encoding") != crypto.ENCODING:
        raise DecryptionError("a payload that is not encrypted: refused")
    bound = sealed.metadata.get(WORKFLOW_ID)
    if bound is None:
        raise crypto.ForeignPayload(f"a payload made for no workflow used in {workflow_id!r}: refused")
    if bound != workflow_id.encode():
        raise crypto.ForeignPayload(f"a payload of workflow {bound!r} used in {workflow_id!r}")
    plain = keyring.decrypt(sealed.metadata.get(KEY_ID, b"").decode(), sealed.data, b"workflow:" + bound)
    if plain.startswith(b"\x00"):
        plain = zlib.decompress(plain[1:])
    payload = Payload()
    payload.ParseFromString(plain)
    return payload


def _as_before_compression(keyring: Keyring) -> EncryptionCodec:
    """What writes as a process of a version before compression did: this one with both settings off."""
    return EncryptionCodec(keyring, compress=False, short_metadata=False)


async def test_a_body_is_compressed_before_it_is_encrypted_and_reads_back_the_same() -> None:
    keyring = Keyring.parse(new_key_entry("k1"))
    payload = _body_payload()
    compressed = await _sealed(EncryptionCodec(keyring), payload)
    uncompressed = await _sealed(_as_before_compression(keyring), payload)
    assert len(compressed.data) < 0.75 * len(uncompressed.data)
    for sealed in (compressed, uncompressed):  # what either wrote, this version reads
        assert await EncryptionCodec(keyring).with_context(_CONTEXT).decode([sealed]) == [payload]
    # Compression is inside the encryption: the workflow binding holds as before.
    other = EncryptionCodec(keyring).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id="x")
    )
    with pytest.raises(DecryptionError, match="used in 'x'"):
        await other.decode([compressed])


async def test_a_version_before_compression_reads_what_compression_off_writes_and_refuses_the_rest() -> None:
    """The rollout: with WEBHOOKS_PAYLOAD_COMPRESSION (and the short metadata) off, what this version writes
    is what the one before it read; with compression on, that one refuses a compressed payload rather than
    misread it."""
    keyring = Keyring.parse(new_key_entry("k1"))
    payload = _body_payload()
    assert (
        _opened_as_before_compression(keyring, await _sealed(_as_before_compression(keyring), payload))
        == payload
    )
    with pytest.raises(DecodeError):
        _opened_as_before_compression(
            keyring, await _sealed(EncryptionCodec(keyring, short_metadata=False), payload)
        )


async def test_a_payload_that_compression_would_not_shorten_is_kept_as_it_was() -> None:
    keyring = Keyring.parse(new_key_entry("k1"))
    short = pydantic_data_converter.payload_converter.to_payloads(["ok"])[0]
    sealed = await _sealed(EncryptionCodec(keyring, short_metadata=False), short)
    assert _opened_as_before_compression(keyring, sealed) == short


@pytest.mark.parametrize("compress", [True, False])
async def test_every_process_s_client_writes_as_the_setting_says(compress: bool) -> None:
    """The one codec that writes (core/temporal.py's client, which the API and the worker use) follows
    WEBHOOKS_PAYLOAD_COMPRESSION."""
    entry = new_key_entry("k1")
    settings = Settings(
        encryption_keys=entry,
        payload_compression=compress,
        payload_short_metadata=False,
        temporal_port=free_port(),
    )
    client = await connect(settings, lazy=True)
    codec = client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    sealed = await _sealed(codec, _body_payload())
    if compress:
        with pytest.raises(DecodeError):
            _opened_as_before_compression(Keyring.parse(entry), sealed)
    else:
        assert _opened_as_before_compression(Keyring.parse(entry), sealed) == _body_payload()


@pytest.mark.parametrize(
    ("inside", "says"),
    [
        (zlib.compress(bytes(4096)), "more than 1024 bytes"),  # a bomb, were anyone but us able to seal one
        (zlib.compress(bytes(512))[:-6], "cut short"),
        (b"not zlib at all", "does not decompress"),
    ],
)
async def test_a_compressed_payload_is_read_within_bounds_or_refused(
    inside: bytes, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "_MAX_DECOMPRESSED_BYTES", 1024)
    keyring = Keyring.parse(new_key_entry("k1"))
    workflow_id = _CONTEXT.workflow_id.encode()
    kid, sealed = keyring.encrypt(b"\x00" + inside, b"workflow:" + workflow_id)
    payload = Payload(
        metadata={"encoding": crypto.ENCODING, KEY_ID: kid.encode(), WORKFLOW_ID: workflow_id}, data=sealed
    )
    with pytest.raises(DecryptionError, match=says):
        await EncryptionCodec(keyring).with_context(_CONTEXT).decode([payload])


def _sealed_payload(keyring: Keyring, plain: bytes, **metadata: bytes) -> Payload:
    """A payload as our codec seals one for no workflow (what the codec server reads), `metadata` over it."""
    kid, sealed = keyring.encrypt(plain, b"")
    return Payload(metadata={"encoding": crypto.ENCODING, KEY_ID: kid.encode(), **metadata}, data=sealed)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"data": b""}, "too short"),
        ({"data": b"\x00" * 27}, "too short"),
        ({KEY_ID: b"\xff\xfe"}, "key id that is not text"),
        ({"plain": b"\xff\xff\xff"}, "not a payload"),
    ],
)
async def test_a_malformed_sealed_payload_is_refused_saying_why_never_raised_as_something_else(
    change: dict[str, bytes], says: str
) -> None:
    """What the Web UI's codec endpoint (`/codec/decode`) is sent can be anything: each kind of nonsense is
    a DecryptionError, which the route answers 422; any other exception would be a 500."""
    keyring = Keyring.parse(new_key_entry("k1"))
    metadata = dict(change)
    payload = _sealed_payload(keyring, metadata.pop("plain", Payload(data=b"{}").SerializeToString()))
    if "data" in metadata:
        payload.data = metadata.pop("data")
    for name, value in metadata.items():
        payload.metadata[name] = value
    with pytest.raises(DecryptionError, match=says):
        await EncryptionCodec(keyring).decode([payload])


async def test_a_payload_copied_from_another_workflow_is_foreign_and_a_missing_key_is_not() -> None:
    """Readers outside a workflow (an attempt reading its event, the log) take a foreign payload for no
    event at all, but must not take a key missing from their process for one: the key's arrival mends
    that, and an attempt or a lane that gave up on the event would have dropped it for good."""
    keyring = Keyring.parse(new_key_entry("k1"))
    sealed = await _sealed(EncryptionCodec(keyring), _body_payload())
    elsewhere = WorkflowSerializationContext(namespace="default", workflow_id="event:other:evt_1")
    with pytest.raises(crypto.ForeignPayload, match="used in 'event:other:evt_1'"):
        await EncryptionCodec(keyring).with_context(elsewhere).decode([sealed])
    without_the_key = EncryptionCodec(Keyring.parse(new_key_entry("k2"))).with_context(_CONTEXT)
    # Which workflow waits for the key, for the operator's log (the API's 503 does not say).
    says = "key 'k1', which is not in WEBHOOKS_ENCRYPTION_KEYS, in workflow 'delivery:t:evt_1:ep_1'"
    with pytest.raises(crypto.MissingKey, match=re.escape(says)):
        await without_the_key.decode([sealed])
    # The codec server reads for no workflow: the key alone.
    with pytest.raises(crypto.MissingKey, match=r"WEBHOOKS_ENCRYPTION_KEYS$"):
        await EncryptionCodec(Keyring.parse(new_key_entry("k2"))).decode([sealed])


# The short metadata (issue 25, 3): the workflow id was in every payload's metadata, in the clear, and none
# of it compresses.


def _short(keyring: Keyring) -> EncryptionCodec:
    return EncryptionCodec(keyring, short_metadata=True)


async def test_the_short_metadata_binds_a_payload_to_its_workflow_by_the_sha256_of_its_id() -> None:
    keyring = Keyring.parse(new_key_entry("k1"))
    payload = _body_payload()
    short = await _sealed(_short(keyring), payload)
    long = await _sealed(EncryptionCodec(keyring), payload)
    digest = hashlib.sha256(_CONTEXT.workflow_id.encode()).digest()
    assert dict(short.metadata) == {"encoding": crypto.ENCODING, SHORT_KEY_ID: b"k1", BOUND_TO: digest}
    assert long.ByteSize() - short.ByteSize() >= len(_CONTEXT.workflow_id)
    # Read in its workflow, and by the codec server, which reads in none; whichever form writes.
    for reader in (
        EncryptionCodec(keyring).with_context(_CONTEXT),
        EncryptionCodec(keyring),
        _short(keyring),
    ):
        assert await reader.decode([short]) == [payload]
        assert await reader.decode([long]) == [payload]
    elsewhere = WorkflowSerializationContext(namespace="default", workflow_id="delivery:t:evt_2:ep_1")
    with pytest.raises(crypto.ForeignPayload, match="another workflow used in 'delivery:t:evt_2:ep_1'"):
        await EncryptionCodec(keyring).with_context(elsewhere).decode([short])


async def test_a_short_binding_changed_or_dressed_as_the_long_form_is_refused_even_by_the_codec_server() -> (
    None
):
    """Someone with access to Temporal and no key can rewrite metadata: the binding is authenticated, and
    each form under a prefix of its own, so neither another workflow's digest, nor the long form's id,
    nor a long form's id presented as a digest opens it."""
    keyring = Keyring.parse(new_key_entry("k1"))
    short = await _sealed(_short(keyring), _body_payload())
    other = hashlib.sha256(b"delivery:t:evt_2:ep_1").digest()
    moved = Payload(metadata={**short.metadata, BOUND_TO: other}, data=short.data)
    as_long = Payload(
        metadata={
            "encoding": crypto.ENCODING,
            KEY_ID: short.metadata[SHORT_KEY_ID],
            WORKFLOW_ID: _CONTEXT.workflow_id.encode(),
        },
        data=short.data,
    )
    unbound = Payload(metadata={"encoding": crypto.ENCODING, SHORT_KEY_ID: b"k1"}, data=short.data)
    # A long payload of a workflow whose id is as long as a digest, its id given as the short form's
    # digest: under one prefix for both forms, the associated data would be the same, and it would open.
    digest_long = "x" * len(other)
    long = (
        await EncryptionCodec(keyring)
        .with_context(WorkflowSerializationContext(namespace="default", workflow_id=digest_long))
        .encode([_body_payload()])
    )
    as_short = Payload(
        metadata={"encoding": crypto.ENCODING, SHORT_KEY_ID: b"k1", BOUND_TO: digest_long.encode()},
        data=long[0].data,
    )
    for forged in (moved, as_long, unbound, as_short):
        with pytest.raises(DecryptionError, match="not made with our key, or changed since"):
            await EncryptionCodec(keyring).decode([forged])
    with pytest.raises(crypto.ForeignPayload, match="made for no workflow"):
        await EncryptionCodec(keyring).with_context(_CONTEXT).decode([unbound])


@pytest.mark.parametrize("added", [{KEY_ID: b"k1"}, {WORKFLOW_ID: b"delivery:t:evt_2:ep_1"}])
async def test_metadata_of_both_forms_is_refused(added: dict[str, bytes]) -> None:
    """The field of the form not read would be authenticated by nothing, and could say anything to whoever
    reads the raw history."""
    keyring = Keyring.parse(new_key_entry("k1"))
    short = await _sealed(_short(keyring), _body_payload())
    long = await _sealed(EncryptionCodec(keyring), _body_payload())
    for sealed, extra in ((short, added), (long, {SHORT_KEY_ID: b"k1"}), (long, {BOUND_TO: bytes(32)})):
        mixed = Payload(metadata={**sealed.metadata, **extra}, data=sealed.data)
        for reader in (EncryptionCodec(keyring), EncryptionCodec(keyring).with_context(_CONTEXT)):
            with pytest.raises(DecryptionError, match="both the short and the long form"):
                await reader.decode([mixed])


async def test_the_version_before_reads_what_is_written_by_default_and_drops_the_short_form() -> None:
    """Why the short form is off by default: the version before reads the long form, which this one writes
    unless told otherwise, but takes a short payload for one made for no workflow, a DecryptionError that
    its event reads took for an event no longer kept (silently dropped, not retried)."""
    keyring = Keyring.parse(new_key_entry("k1"))
    payload = _body_payload()
    written = await _sealed(EncryptionCodec(keyring), payload)
    assert _opened_as_before_short_metadata(keyring, written, _CONTEXT.workflow_id) == payload
    with pytest.raises(crypto.ForeignPayload, match="made for no workflow"):
        _opened_as_before_short_metadata(
            keyring, await _sealed(_short(keyring), payload), _CONTEXT.workflow_id
        )
    assert Settings(encryption_keys=new_key_entry("k1")).payload_short_metadata is False


@pytest.mark.parametrize("short", [True, False])
async def test_every_process_s_client_writes_the_metadata_the_setting_says(short: bool) -> None:
    entry = new_key_entry("k1")
    settings = Settings(encryption_keys=entry, payload_short_metadata=short, temporal_port=free_port())
    client = await connect(settings, lazy=True)
    codec = client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    sealed = await _sealed(codec, _body_payload())
    expected = {"encoding", SHORT_KEY_ID, BOUND_TO} if short else {"encoding", KEY_ID, WORKFLOW_ID}
    assert set(sealed.metadata) == expected


async def test_a_short_binding_of_another_length_is_refused_saying_so() -> None:
    """8ecde3a wrote 16 bytes of the digest (never shipped: the whole of it is what binds now); any length
    but the digest's is not ours, whoever sealed it."""
    keyring = Keyring.parse(new_key_entry("k1"))
    for length in (16, 0, 33):
        digest = hashlib.sha256(_CONTEXT.workflow_id.encode()).digest()[:length].ljust(length, b"\x00")
        kid, sealed = keyring.encrypt(Payload(data=b"{}").SerializeToString(), b"workflow-sha256:" + digest)
        payload = Payload(
            metadata={"encoding": crypto.ENCODING, SHORT_KEY_ID: kid.encode(), BOUND_TO: digest}, data=sealed
        )
        for reader in (EncryptionCodec(keyring), EncryptionCodec(keyring).with_context(_CONTEXT)):
            with pytest.raises(DecryptionError, match=f"a short binding of {length} bytes, not 32"):
                await reader.decode([payload])


@pytest.mark.parametrize("short", [True, False])
async def test_a_payload_that_names_a_later_form_is_waited_for_never_taken_for_one_not_ours(
    short: bool,
) -> None:
    """How the next form of payload can be read safely by this version: it names its form (`f`), and this
    version, which names none, raises what a missing key raises (its readers wait and ask again once the
    process is upgraded) rather than refuse the payload as not ours, which made the version before the
    short form take that form's events for events no longer kept, and drop them."""
    keyring = Keyring.parse(new_key_entry("k1"))
    sealed = await _sealed(EncryptionCodec(keyring, short_metadata=short), _body_payload())
    later = Payload(metadata={**sealed.metadata, crypto.FORM: b"2"}, data=sealed.data)
    for reader in (EncryptionCodec(keyring), EncryptionCodec(keyring).with_context(_CONTEXT)):
        with pytest.raises(crypto.LaterForm, match="a payload of form '2', which a later version wrote"):
            await reader.decode([later])
    # A later form that binds otherwise is waited for too, not taken for a payload made for no workflow.
    unbound = Payload(metadata={"encoding": crypto.ENCODING, SHORT_KEY_ID: b"k1", crypto.FORM: b"2"})
    with pytest.raises(crypto.LaterForm):
        await EncryptionCodec(keyring).with_context(_CONTEXT).decode([unbound])
    # But what binds a payload keeps its meaning in every form: a copy of another workflow's is refused.
    elsewhere = WorkflowSerializationContext(namespace="default", workflow_id="event:other:evt_1")
    with pytest.raises(crypto.ForeignPayload, match="used in 'event:other:evt_1'"):
        await EncryptionCodec(keyring).with_context(elsewhere).decode([later])
    # Metadata that names no form is passed over, as before (a tool may add some).
    added = Payload(metadata={**sealed.metadata, "__temporal_note": b"x"}, data=sealed.data)
    assert await EncryptionCodec(keyring).with_context(_CONTEXT).decode([added]) == [_body_payload()]
    # A missing key and a later form are both data not readable yet, and every reader treats them alike.
    assert issubclass(crypto.LaterForm, crypto.NotYetReadable)
    assert issubclass(crypto.MissingKey, crypto.NotYetReadable)
    assert not issubclass(crypto.ForeignPayload, crypto.NotYetReadable)

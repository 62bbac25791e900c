"""Encryption of customer data and secrets outside the API: Temporal payloads and the store's secrets.

One keyring, from `WEBHOOKS_ENCRYPTION_KEYS` (`kid:base64key,...`, 32-byte AES-256 keys): the first key
encrypts, every key listed decrypts, so a key is rotated by putting a new one first and removing the old
one once nothing encrypted with it is kept any more. AES-GCM is authenticated: anything not made with
one of these keys, or changed since, is refused.

- `EncryptionCodec` is the Temporal payload codec: every payload of every workflow, activity, query,
  update and failure is encrypted before it leaves our processes, and a payload that is not is refused,
  so a workflow started by someone with only Temporal access (no key) never runs. With a serialization
  context, a payload is also bound to its workflow id: a payload copied into another workflow, or made
  for none, is refused where a workflow reads it. A payload is compressed before it is encrypted when
  that makes it shorter (one holding an invoice's JSON to 35–60 % of its bytes: the more JSON, the less).
- `seal`/`unseal` encrypt a secret kept in the endpoint store, bound to what it belongs to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

ENCODING = b"binary/encrypted"
# A payload's metadata, besides its encoding: the key id, and what binds it to its workflow. Long (every
# version): the key id, and the workflow id itself. Short (read since b8d5e66, written with
# `short_metadata=True`): the key id under "k", and the workflow id's SHA-256 under "w", about 50 bytes
# fewer in each of the nine payloads a first-try delivery keeps (BENCHMARKS.md). Both are read; a payload
# with something of both is refused.
KEY_ID = "encryption-key-id"
WORKFLOW_ID = "encryption-workflow-id"
SHORT_KEY_ID = "k"
BOUND_TO = "w"
_BOUND_BYTES = 32  # the whole SHA-256
# Where a payload names its form: none of this version's does. A later form that this version must not read
# keeps the encoding `binary/encrypted` and names itself here, and this version, meeting a name, waits for
# its upgrade (`LaterForm`) rather than refuse the payload as not ours: the versions before this rule took
# the short form for a payload made for no workflow, and their event reads for an event no longer kept.
# Other metadata this version does not know is passed over, as it always was (a tool may add some).
FORM = "f"
# The associated data each form authenticates: distinct prefixes, so that no payload sealed under one form
# opens under the other.
_LONG_AAD, _SHORT_AAD = b"workflow:", b"workflow-sha256:"
_NONCE_BYTES = 12
_TAG_BYTES = 16
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_SEALED = "enc:v1:"
# What a payload's sealed bytes hold: the serialized payload as it is, or this byte and then the
# serialized payload compressed (zlib), whichever is shorter. A serialized payload never starts with
# 0x00 (protobuf has no field 0), so what was sealed before compression reads as it always did, and a
# process of a version before it refuses a compressed payload ("wire format was corrupt") rather than
# misread it. The byte is inside the encryption: nobody without a key can set or change it.
_COMPRESSED = b"\x00"
# Far more than any payload Temporal takes (its blob size limit is 2 MB by default).
_MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


class DecryptionError(ValueError):
    """Data that none of our keys made, or that was changed since: refused, never used."""


class NotYetReadable(DecryptionError):
    """Data this process cannot read yet, and a process with its key or its version will: kept, and read
    again later. A reader waits for it (raises, and is asked again), never takes it for data not ours,
    which an attempt, a lane or a replay would have dropped for good."""


class MissingKey(NotYetReadable):
    """Sealed with a key this process does not have (a rotation under way, a key not yet given to it):
    the key's arrival mends it."""


class LaterForm(NotYetReadable):
    """A payload that names its form (`FORM`): a later version wrote it (an upgrade under way, or a
    rollback). This process's upgrade mends it."""


class ForeignPayload(DecryptionError):
    """A payload made for another workflow, or for none, read in this one: copied in, not this workflow's
    own. Unlike a missing key, nothing will make it so."""


def looks_random(raw: bytes) -> bool:
    """Whether `raw` may be random bytes. Random bytes hardly repeat (24 of them take 12 values or fewer
    about once in 10^20 draws; 32, 16 or fewer, rarer still): all zeros, or a short pattern again and
    again, is a key or secret anyone could guess."""
    return len(set(raw)) >= len(raw) // 2


@dataclass(frozen=True, slots=True)
class Keyring:
    """The keys: `current` encrypts, every key decrypts."""

    keys: dict[str, AESGCM]
    current: str
    # As listed, the current key's first; never in a repr (a log of the keyring shows no key).
    _raws: tuple[bytes, ...] = field(repr=False)
    # Keys anyone could guess, kept after the first to decrypt what they sealed: retired whatever is said.
    _weak: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, value: str) -> Keyring:
        """`"k2:BASE64,k1:BASE64"` → a keyring that encrypts with k2 and decrypts with both."""
        keys: dict[str, AESGCM] = {}
        order: list[str] = []
        raws: list[bytes] = []
        weak: set[str] = set()
        entries = [e.strip() for e in value.split(",")]
        if len(entries) > 1 and not all(entries):
            # "$NEW,$OLD" with $NEW unset: the rotation an operator meant did not happen. Say so.
            position = entries.index("") + 1
            raise ValueError(
                f"WEBHOOKS_ENCRYPTION_KEYS has an empty entry (number {position}): is a variable in it unset?"
            )
        for entry in filter(None, entries):
            kid, sep, encoded = entry.partition(":")
            if not sep or not KEY_ID_PATTERN.match(kid):
                raise ValueError(
                    "WEBHOOKS_ENCRYPTION_KEYS must look like key_id:base64key,... (key ids use letters, "
                    "digits, '_', '-' and '.'); make one with `python -m cli.crypto new-key`"
                )
            try:
                raw = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise ValueError(f"encryption key {kid} is not valid base64") from None
            if len(raw) != 32:
                raise ValueError(f"encryption key {kid} must be 32 bytes (AES-256), got {len(raw)}")
            # A weak key listed after the first decrypts only what it sealed: the way off it (F7 of an
            # attack session: refused anywhere, a deployment on one could neither start nor rotate).
            if not looks_random(raw):
                if not order:
                    raise ValueError(
                        f"encryption key {kid} is not random: its 32 bytes take only {len(set(raw))} "
                        "values; make one with `python -m cli.crypto new-key` and list it first (this one "
                        "after it still decrypts what it sealed)"
                    )
                weak.add(kid)
            if kid in keys:
                raise ValueError(f"encryption key id {kid} is listed twice")
            keys[kid] = AESGCM(raw)
            order.append(kid)
            raws.append(raw)
        if not keys:
            raise ValueError("WEBHOOKS_ENCRYPTION_KEYS lists no key")
        return cls(keys, order[0], tuple(raws), frozenset(weak))

    def derive(self, purpose: str, *, retired: Collection[str] = ()) -> tuple[bytes, ...]:
        """Keys for `purpose` (a MAC, say), one derived from each key, the current key's first: what the
        service makes with them (a token, a cursor, a name) it makes with the first, and what it is shown
        it checks against every one. So while a new key is given to every process, second and then first,
        whatever one process made another takes; what was made with a key ends when that key is removed,
        or retired: a key id in `retired` (never the current one) is kept to decrypt only, and nothing is
        derived from it (a key that leaked: what it could sign is refused at once)."""
        assert self.current not in retired, "the current key encrypts: it cannot be retired"
        return tuple(
            hmac.new(raw, purpose.encode(), hashlib.sha256).digest()
            for kid, raw in zip(self.keys, self._raws, strict=True)
            if kid not in retired and kid not in self._weak
        )

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE_BYTES)
        return self.current, nonce + self.keys[self.current].encrypt(nonce, plaintext, aad)

    def decrypt(self, kid: str, sealed: bytes, aad: bytes) -> bytes:
        key = self.keys.get(kid)
        if key is None:
            raise MissingKey(f"encrypted with key {kid!r}, which is not in WEBHOOKS_ENCRYPTION_KEYS")
        if len(sealed) < _NONCE_BYTES + _TAG_BYTES:  # AES-GCM would raise a bare ValueError
            raise DecryptionError("too short to be sealed by us: no room for its nonce and tag")
        try:
            return key.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionError("not made with our key, or changed since") from None


def new_key_entry(kid: str) -> str:
    """A fresh `kid:base64key` entry for WEBHOOKS_ENCRYPTION_KEYS."""
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """AES-GCM over each whole payload, compressed first when that is shorter; the key id (and what binds
    it to its workflow, when that is known) in its metadata.

    `compress=False` writes payloads as a version before compression did, for as long as processes of
    such a version still run beside this one (WEBHOOKS_PAYLOAD_COMPRESSION). `short_metadata=True` writes
    the short metadata, which versions before b8d5e66 cannot read (WEBHOOKS_PAYLOAD_SHORT_METADATA, off
    by default: such a version takes a payload it cannot bind for an event no longer kept, and would
    drop it). Every form is read.
    """

    def __init__(
        self,
        keyring: Keyring,
        workflow_id: str | None = None,
        *,
        compress: bool = True,
        short_metadata: bool = False,
    ) -> None:
        self._keyring = keyring
        self._workflow_id = workflow_id
        self._compress = compress
        self._short = short_metadata

    def with_context(self, context: SerializationContext) -> Self:
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        return type(self)(self._keyring, workflow_id, compress=self._compress, short_metadata=self._short)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) for p in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        binding: dict[str, bytes] = {}
        aad = b""
        if self._workflow_id is not None:
            if self._short:
                binding[BOUND_TO] = _bound(self._workflow_id)
                aad = _SHORT_AAD + binding[BOUND_TO]
            else:
                binding[WORKFLOW_ID] = self._workflow_id.encode()
                aad = _LONG_AAD + binding[WORKFLOW_ID]
        kid, sealed = self._keyring.encrypt(self._packed(payload.SerializeToString()), aad)
        key = {SHORT_KEY_ID if self._short else KEY_ID: kid.encode()}
        return Payload(metadata={"encoding": ENCODING, **key, **binding}, data=sealed)

    def _decrypt(self, payload: Payload) -> Payload:
        try:
            return self._opened(payload)
        except NotYetReadable as err:
            if self._workflow_id is None:
                raise
            # Which workflow waits for the key or the upgrade is the operator's to know: the API logs it
            # as it answers 503, a worker as its try fails.
            err.args = (f"{err}, in workflow {self._workflow_id!r}",)
            raise

    def _opened(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            raise DecryptionError("a payload that is not encrypted: refused")
        aad = self._associated_data(payload)
        try:
            kid = payload.metadata.get(SHORT_KEY_ID, payload.metadata.get(KEY_ID, b"")).decode()
        except UnicodeDecodeError:
            raise DecryptionError("a key id that is not text: not one of ours") from None
        plain = self._keyring.decrypt(kid, payload.data, aad)
        if plain.startswith(_COMPRESSED):
            plain = _decompressed(plain[1:])
        decoded = Payload()
        try:
            decoded.ParseFromString(plain)
        except DecodeError as err:  # sealed by our key, so only ever a bug of ours: said, not a 500
            raise DecryptionError(f"decrypted, but not a payload: {err}") from None
        return decoded

    def _associated_data(self, payload: Payload) -> bytes:
        """What the payload was sealed with, from its binding, once that binding is this workflow's (when
        this codec reads in a workflow's context; the codec server reads in none). Metadata of both forms
        is refused: the field not read would be authenticated by nothing, and could say anything."""
        metadata = payload.metadata
        if (SHORT_KEY_ID in metadata or BOUND_TO in metadata) and (
            KEY_ID in metadata or WORKFLOW_ID in metadata
        ):
            raise DecryptionError("metadata of both the short and the long form: not one of ours")
        here = self._workflow_id
        aad: bytes | None = None
        if (digest := metadata.get(BOUND_TO)) is not None:
            if len(digest) != _BOUND_BYTES:  # 8ecde3a's 16 bytes among them: that form never shipped
                raise DecryptionError(
                    f"a short binding of {len(digest)} bytes, not {_BOUND_BYTES}: not one of ours"
                )
            if here is not None and not hmac.compare_digest(digest, _bound(here)):
                raise ForeignPayload(f"a payload of another workflow used in {here!r}")
            aad = _SHORT_AAD + digest
        elif (bound := metadata.get(WORKFLOW_ID)) is not None:
            if here is not None and bound != here.encode():
                made_for = bound.decode(errors="replace")
                raise ForeignPayload(f"a payload of workflow {made_for!r} used in {here!r}")
            aad = _LONG_AAD + bound
        # After what binds it, which a later form keeps meaning the same: a copy of another workflow's
        # payload is refused whatever form it names. Before "made for no workflow": a later form may bind
        # otherwise.
        if (form := metadata.get(FORM)) is not None:
            named = form[:40].decode(errors="replace")
            raise LaterForm(f"a payload of form {named!r}, which a later version wrote: this one reads none")
        if aad is not None:
            return aad
        if here is not None:
            # Made for no workflow (no context, as a codec server's encode would): whoever made it, not
            # our client or worker, chose what this workflow would sign and send.
            raise ForeignPayload(f"a payload made for no workflow used in {here!r}: refused")
        return b""

    def _packed(self, serialized: bytes) -> bytes:
        if not self._compress:
            return serialized
        compressed = _COMPRESSED + zlib.compress(serialized)
        return compressed if len(compressed) < len(serialized) else serialized


def _bound(workflow_id: str) -> bytes:
    """What binds a payload to its workflow in the short form: the whole SHA-256 of its id, so that moving
    a payload to another workflow takes a collision of SHA-256 even for someone who chooses both ids (a
    client chooses its event ids; someone with Temporal access, any workflow id)."""
    return hashlib.sha256(workflow_id.encode()).digest()


def _decompressed(data: bytes) -> bytes:
    """Only ever what one of our keys sealed, so never a bomb of someone else's; bounded all the same."""
    inflate = zlib.decompressobj()
    try:
        plain = inflate.decompress(data, _MAX_DECOMPRESSED_BYTES)
    except zlib.error as err:
        raise DecryptionError(f"a compressed payload that does not decompress: {err}") from None
    if inflate.unconsumed_tail:
        raise DecryptionError(f"a compressed payload of more than {_MAX_DECOMPRESSED_BYTES} bytes: refused")
    if not inflate.eof:
        raise DecryptionError("a compressed payload cut short: refused")
    return plain


def seal(keyring: Keyring, secret: str, *, purpose: str) -> str:
    """`enc:v1:{kid}:{base64}`: a secret for the store, bound to `purpose` (say, the row it belongs to),
    so that a sealed value copied to another row does not open there."""
    kid, sealed = keyring.encrypt(secret.encode(), purpose.encode())
    return f"{_SEALED}{kid}:{base64.b64encode(sealed).decode()}"


def unseal(keyring: Keyring, value: str, *, purpose: str) -> str:
    kid, _, encoded = value.removeprefix(_SEALED).partition(":")
    return keyring.decrypt(kid, base64.b64decode(encoded), purpose.encode()).decode()


def is_sealed(value: str) -> bool:
    return value.startswith(_SEALED)


def sealed_with(value: str) -> str:
    """The id of the key a sealed value was made with."""
    return value.removeprefix(_SEALED).partition(":")[0]

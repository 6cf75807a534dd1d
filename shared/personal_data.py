"""Personal data at rest: each client's personal fields sealed under a key of its own.

Issue 13 builds erasure on this: destroy a client's key and every copy of its personal
fields in the event store, backups included, is unreadable, while the events, their
figures and their hash chain stay as they were.

- **A client's key** is 32 random bytes for AES-256-GCM, made with its client.created
  event and stored beside it in `client_keys` (migration 0015), never in an event,
  wrapped by the master key: `master key id (8) || nonce (12) || AES-GCM(master,
  client key) (48)`, the associated data naming the business and stream, so that a
  wrapped key moved to another client's row does not open.
- **An event's personal fields** (PERSONAL_FIELDS: a client's profile, a posting's
  description and reference, a reversal's reason) are stored blank in its payload
  and sealed together in its `sealed` column: `1 || nonce (12) || AES-GCM(client key,
  JSON object of the non-empty fields)`, the associated data being the event's id.
  An event with none of them set is stored as it is, with no `sealed`: a posting
  without a description costs no cipher. The hash chain covers the sealed bytes
  (shared/hash_chain.py), so checking it needs no client key.
- **The master key** comes from LEDGER_MASTER_KEY (or its file); unset, it is derived
  from the hash chain's key under a label of its own. Each master key has an id (an
  HMAC of a fixed label under it, 8 bytes) recorded in front of every key it wraps;
  a process knows every master key its settings name (use_master_keys), the previous
  ones included, so a key wrapped before a rotation still opens.

Pure and synchronous: the callers fetch the wrapped keys with the events they read
(shared/store/event_store.py) and store new ones with the events they write.
"""

from __future__ import annotations

import decimal
import functools
import hashlib
import hmac
import uuid

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared import events as e
from shared import uuids

# The payload fields each event type keeps sealed, by event type.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "client.created": e.PROFILE_FIELDS,
    "client.updated": e.PROFILE_FIELDS,
    "transaction.posted": ("description", "reference"),
    "deposit.posted": ("description",),
    "transaction.reversed": ("reason",),
    "deposit.reversed": ("reason",),
}
KEY_BYTES = 32
NONCE_BYTES = 12
MASTER_ID_BYTES = 8
SEALED_FORMAT = b"\x01"
_MASTER_LABEL = b"ledger personal-data master key"
_MASTER_ID_LABEL = b"ledger personal-data master key id"
# Unwrapped client keys and their ciphers kept per process: a client's events come in
# runs, and an unwrap costs a cipher of its own.
CACHED_KEYS = 4096
_fields_decoder = msgspec.json.Decoder(dict[str, str])


class PersonalDataError(Exception):
    """A wrapped key or sealed field that does not open: tampered with, moved, or
    wrapped by a master key this process was not given."""


class MasterKey(msgspec.Struct, frozen=True):
    secret: bytes
    id: bytes


def master_key(text: str) -> MasterKey:
    """The master key a setting's text names (its UTF-8 bytes, at least 32 of them,
    as the hash chain's key: shared/keyring.weakness)."""
    raw = text.encode()
    return MasterKey(
        secret=hmac.new(raw, _MASTER_LABEL, hashlib.sha256).digest(),
        id=hmac.new(raw, _MASTER_ID_LABEL, hashlib.sha256).digest()[:MASTER_ID_BYTES],
    )


class MasterKeys(msgspec.Struct, frozen=True):
    """The master key new client keys are wrapped with, and the previous ones."""

    current: MasterKey
    previous: tuple[MasterKey, ...] = ()


# The text a master key is derived from when LEDGER_MASTER_KEY is unset: this prefix
# and the hash chain's key (one secret, two keys under labels of their own).
DERIVED_PREFIX = "derived from the hash-chain key:"


def derived_master_key(hmac_key: str) -> MasterKey:
    """The master key when LEDGER_MASTER_KEY is unset, known to this process."""
    derived = master_key(DERIVED_PREFIX + hmac_key)
    use_master_keys(derived)
    return derived


# Every master key this process was given, by id: unwrap() finds a key's master here.
_masters: dict[bytes, bytes] = {}


def use_master_keys(*keys: MasterKey) -> None:
    """Let this process open client keys wrapped by any of these master keys."""
    for key in keys:
        _masters[key.id] = key.secret


def new_client_key() -> bytes:
    return uuids.random_bytes(KEY_BYTES)


def _client_binding(business_id: int, stream_id: str) -> bytes:
    return f"{business_id}:{stream_id}".encode()


def wrap(master: MasterKey, business_id: int, stream_id: str, key: bytes) -> bytes:
    """The client key as `client_keys.wrapped` stores it."""
    nonce = uuids.random_bytes(NONCE_BYTES)
    sealed = _cipher(master.secret).encrypt(
        nonce, key, _client_binding(business_id, stream_id)
    )
    return master.id + nonce + sealed


@functools.lru_cache(maxsize=CACHED_KEYS)
def unwrap(wrapped: bytes, business_id: int, stream_id: str) -> bytes:
    """The client key a `client_keys.wrapped` value holds, or PersonalDataError."""
    master_id = wrapped[:MASTER_ID_BYTES]
    secret = _masters.get(master_id)
    if secret is None:
        raise PersonalDataError(
            f"the key of {stream_id} (business {business_id}) is wrapped by master"
            f" key {master_id.hex()}, which this process was not given"
        )
    nonce = wrapped[MASTER_ID_BYTES : MASTER_ID_BYTES + NONCE_BYTES]
    try:
        return _cipher(secret).decrypt(
            nonce,
            wrapped[MASTER_ID_BYTES + NONCE_BYTES :],
            _client_binding(business_id, stream_id),
        )
    except InvalidTag:
        raise PersonalDataError(
            f"the key of {stream_id} (business {business_id}) does not open"
        ) from None


def master_id_of(wrapped: bytes) -> bytes:
    return wrapped[:MASTER_ID_BYTES]


@functools.lru_cache(maxsize=CACHED_KEYS)
def _cipher(key: bytes) -> AESGCM:
    return AESGCM(key)


def seal(
    key: bytes, event_id: uuid.UUID, payload: e.LedgerEvent
) -> tuple[e.LedgerEvent, bytes | None]:
    """The payload as stored (its personal fields blank) and its sealed fields; the
    payload itself and None when it has no personal field set."""
    names = PERSONAL_FIELDS.get(e.event_type(payload), ())
    fields = {
        name: value
        for name in names
        if isinstance(value := getattr(payload, name), str) and value
    }
    if any("\x00" in value for value in fields.values()):
        # Text PostgreSQL cannot hold, nor then the read models: left in the payload,
        # which the store refuses whole, as it refuses any other such event (the
        # HTTP layer refuses it before; a writer that let it through fails here).
        return payload, None
    if not fields:
        return payload, None
    nonce = uuids.random_bytes(NONCE_BYTES)
    sealed = _cipher(key).encrypt(nonce, msgspec.json.encode(fields), event_id.bytes)
    blank = msgspec.structs.replace(payload, **dict.fromkeys(fields, ""))
    return blank, SEALED_FORMAT + nonce + sealed


def unseal(
    key: bytes, event_id: uuid.UUID, payload: e.LedgerEvent, sealed: bytes
) -> e.LedgerEvent:
    """The payload with its sealed fields back, or PersonalDataError."""
    if sealed[:1] != SEALED_FORMAT:
        raise PersonalDataError(f"event {event_id}: unknown sealed format")
    nonce = sealed[1 : 1 + NONCE_BYTES]
    try:
        plain = _cipher(key).decrypt(nonce, sealed[1 + NONCE_BYTES :], event_id.bytes)
    except InvalidTag:
        raise PersonalDataError(
            f"event {event_id}: its sealed fields do not open"
        ) from None
    fields = _fields_decoder.decode(plain)
    allowed = PERSONAL_FIELDS.get(e.event_type(payload), ())
    if not set(fields) <= set(allowed):
        raise PersonalDataError(f"event {event_id}: sealed fields it may not have")
    return msgspec.structs.replace(payload, **fields)


def erased(payload: e.LedgerEvent) -> e.LedgerEvent:
    """The payload of a sealed event whose client key is gone: its personal fields
    (those it carries) null, its figures as they were."""
    names = PERSONAL_FIELDS.get(e.event_type(payload), ())
    present = [name for name in names if getattr(payload, name) is not msgspec.UNSET]
    return msgspec.structs.replace(payload, **dict.fromkeys(present))


# The fields of an answer (a response body) that hold personal data: what an erasure
# nulls in the answers kept for Idempotency-Keys (services/command_api/erasures.py).
ANSWER_FIELDS = frozenset(name for names in PERSONAL_FIELDS.values() for name in names)
_answer_decoder = msgspec.json.Decoder(float_hook=decimal.Decimal)
_answer_encoder = msgspec.json.Encoder(decimal_format="number")


def nulled_answer(body: bytes) -> bytes:
    """A kept answer's body with its personal fields null, in any object it holds;
    everything else as it was (key order, numbers as written). A body that is not
    JSON is kept as it is: it holds no field."""
    try:
        answer = _answer_decoder.decode(body)
    except msgspec.DecodeError:
        return body
    return _answer_encoder.encode(_nulled(answer))


def _nulled(value: object) -> object:
    if isinstance(value, dict):
        return {
            name: None if name in ANSWER_FIELDS else _nulled(item)
            for name, item in value.items()
        }
    if isinstance(value, list):
        return [_nulled(item) for item in value]
    return value

"""chain() hashes each event as the audit later recomputes it from the stored row.

chain() hands the payload and metadata structs to the canonical encoder as they are;
the audit hashes the JSON objects decoded from the stored row. For one payload of
every event type, the two must give the same hash, or every new event would fail
the audit.
"""

from __future__ import annotations

import datetime as dt
import typing

import msgspec

from shared import events as e
from shared.hash_chain import GENESIS, event_hash, hashed_content
from shared.store.new_events import StreamHead, chain

KEY = b"a key of the test, thirty-two bytes or more"
AT = dt.datetime(2024, 11, 4, 16, 13, 37, 123456, tzinfo=dt.UTC)
DAY = dt.date(2024, 11, 4)
PAYLOADS: list[e.LedgerEvent] = [
    e.CategoryCreated(category_id=1, name='Wholé "sale"', description="d\n"),
    e.ClientCreated(client_id=1, account_id=2, category_id=3, business_name="B"),
    e.ClientUpdated(client_id=1, business_name="New name", category_id=4),
    e.ClientArchived(client_id=1),
    e.ClientUnarchived(client_id=1),
    e.ClientDeleted(client_id=1),
    e.ClientErased(client_id=1),
    e.TransactionPosted(
        transaction_id=5,
        client_id=1,
        account_id=2,
        entry_type="debit",
        amount_minor=123_450,
        date=DAY,
        description="Opening balance",
    ),
    e.DepositPosted(
        deposit_id=6,
        client_id=1,
        deposit_account_id=7,
        entry_type="debit",
        amount_minor=550,
        date=DAY,
    ),
    e.ClientsImported(import_id="i", category_id=3, imported=2, total_unpaid_minor=-5),
    e.TransactionReversed(
        transaction_id=8,
        reversal_of=5,
        client_id=1,
        account_id=2,
        entry_type="credit",
        amount_minor=123_450,
        date=DAY,
        reason="typo",
    ),
    e.DepositReversed(
        deposit_id=9,
        reversal_of=6,
        client_id=1,
        deposit_account_id=7,
        entry_type="credit",
        amount_minor=550,
        date=DAY,
    ),
    e.ChainCheckpoint(
        checkpoint_id="c",
        heads=[e.ChainHead(stream_id="client-1", version=3, hash=GENESIS)],
    ),
    e.MonitorCreated(
        monitor_id="m",
        scope="client",
        client_id=1,
        figure="balance",
        condition=">=",
        threshold_minor=-1050,
    ),
    e.MonitorTriggered(
        monitor_id="m",
        client_id=1,
        figure="balance",
        condition=">=",
        threshold_minor=-1050,
        value_minor=0,
        position=41,
    ),
    e.MonitorDeleted(monitor_id="m"),
]


def as_stored(value: object) -> object:
    """What a reader decodes from the row's jsonb: plain JSON objects."""
    return msgspec.json.decode(msgspec.json.encode(value))


def test_every_event_type_has_a_sample() -> None:
    """The samples cover the whole union, so a new event type is not left out."""
    assert {type(p) for p in PAYLOADS} == set(typing.get_args(e.LedgerEvent))


def test_chained_hashes_equal_the_hashes_of_the_stored_json() -> None:
    """Each chained event's hash is the one recomputed from its stored JSON, chained
    from the genesis hash as the audit does."""
    metadata = e.Metadata(correlation_id="c", principal="api_key:k")
    events = chain(KEY, 7, "client-1", StreamHead(), PAYLOADS, AT, metadata)
    previous = GENESIS
    for event in events:
        content = hashed_content(
            event_id=str(event.event_id),
            event_type=e.event_type(event.payload),
            business_id=event.business_id,
            stream_id=event.stream_id,
            version=event.version,
            schema_version=event.schema_version,
            recorded_at=event.recorded_at.isoformat(),
            metadata=as_stored(event.metadata),
            payload=as_stored(event.payload),
            key_id=event.key_id,
        )
        assert event.hash == event_hash(KEY, previous, content)
        previous = event.hash

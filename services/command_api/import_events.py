"""Hop 2 for spreadsheets: the events of a validated import, decided before BEGIN.

Pure and synchronous (it runs in a worker thread): every client is a new stream, so
nothing is read from the store; ids come from the sequences beforehand. The events are
exactly those the HTTP commands produce (client.created, transaction.posted,
deposit.posted, client.archived), plus one clients.imported on the import's stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

import msgspec

from services.command_api.batch_io import GENESIS, name_key
from services.command_api.excel_import import ImportRow
from shared import events as e
from shared.store.event_store import NewEvent, new_event

OPENING_BALANCE = "Opening balance"
OPENING_DEPOSIT = "Opening deposit"


class ImportIds(msgspec.Struct, kw_only=True):
    """Ids drawn from the sequences, consumed in row order."""

    clients: list[int]
    accounts: list[int]
    entries: list[int]
    categories: list[int]


class ImportPlan(msgspec.Struct, kw_only=True, frozen=True):
    import_id: str
    business_id: int
    category_id: int
    today: dt.date
    now: dt.datetime
    metadata: e.Metadata
    file_sha256: str
    hmac_key: bytes
    categories: dict[str, int]  # name key -> existing category id
    new_categories: dict[str, str]  # name key -> display name, to create


def counts(rows: Sequence[ImportRow]) -> tuple[int, int, int]:
    """(accounts, entries, deposits) the rows need."""
    deposits = sum(row.deposit_minor > 0 for row in rows)
    entries = sum(row.unpaid_minor != 0 for row in rows) + deposits
    return len(rows) + deposits, entries, deposits


def payloads(
    plan: ImportPlan, rows: Sequence[ImportRow], ids: ImportIds
) -> Iterator[tuple[str, list[e.LedgerEvent]]]:
    """(stream, payloads) for the import record, new categories and every client."""
    categories = dict(plan.categories)
    for (key, name), category_id in zip(
        plan.new_categories.items(), ids.categories, strict=True
    ):
        categories[key] = category_id
        created = e.CategoryCreated(category_id=category_id, name=name)
        yield e.category_stream(category_id), [created]
    accounts, entries = iter(ids.accounts), iter(ids.entries)
    for row, client_id in zip(rows, ids.clients, strict=True):
        category_id = plan.category_id
        if row.category_name is not None:
            category_id = categories[name_key(row.category_name)]
        events = _client(plan, row, client_id, category_id, accounts, entries)
        yield e.client_stream(client_id), events


def _client(
    plan: ImportPlan,
    row: ImportRow,
    client_id: int,
    category_id: int,
    accounts: Iterator[int],
    entries: Iterator[int],
) -> list[e.LedgerEvent]:
    account_id = next(accounts)
    events: list[e.LedgerEvent] = [
        e.ClientCreated(
            client_id=client_id,
            account_id=account_id,
            category_id=category_id,
            business_name=row.business_name,
            business_phone=row.business_phone,
            business_email=row.business_email,
            business_address=row.business_address,
        )
    ]
    if row.unpaid_minor != 0:
        events.append(
            e.TransactionPosted(
                transaction_id=next(entries),
                client_id=client_id,
                account_id=account_id,
                entry_type="debit" if row.unpaid_minor > 0 else "credit",
                amount_minor=abs(row.unpaid_minor),
                date=plan.today,
                description=OPENING_BALANCE,
            )
        )
    if row.deposit_minor > 0:
        events.append(
            e.DepositPosted(
                deposit_id=next(entries),
                client_id=client_id,
                deposit_account_id=next(accounts),
                entry_type="debit",
                amount_minor=row.deposit_minor,
                date=plan.today,
                description=OPENING_DEPOSIT,
            )
        )
    if row.archived:
        events.append(e.ClientArchived(client_id=client_id))
    return events


def build(
    plan: ImportPlan, rows: Sequence[ImportRow], ids: ImportIds
) -> list[NewEvent]:
    """Every event of the import, hash-chained from each new stream's genesis."""
    record = e.ClientsImported(
        import_id=plan.import_id,
        category_id=plan.category_id,
        imported=len(rows),
        total_unpaid_minor=sum(row.unpaid_minor for row in rows),
        file_sha256=plan.file_sha256,
    )
    built = _chain(plan, e.import_stream(plan.import_id), [record])
    for stream_id, stream_payloads in payloads(plan, rows, ids):
        built.extend(_chain(plan, stream_id, stream_payloads))
    return built


def _chain(
    plan: ImportPlan, stream_id: str, stream_payloads: list[e.LedgerEvent]
) -> list[NewEvent]:
    previous = GENESIS
    chained: list[NewEvent] = []
    for version, payload in enumerate(stream_payloads, start=1):
        event = new_event(
            key=plan.hmac_key,
            previous_hash=previous,
            business_id=plan.business_id,
            stream_id=stream_id,
            version=version,
            recorded_at=plan.now,
            metadata=plan.metadata,
            payload=payload,
        )
        chained.append(event)
        previous = event.hash
    return chained

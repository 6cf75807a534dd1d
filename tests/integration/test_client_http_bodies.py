"""shared/client's LedgerClient against the real service (in-process, with the relay
and projectors running): every route's answer decodes into its typed body, with
exact money, and an accepted write is read with its position."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
import pytest

from shared import events as e
from shared.client import Conflict, LedgerClient, NewClient, NotFound, minor_units
from shared.response_bodies import ClientBody, StatementBody, TransactionBody
from tests.integration.scenarios import id_of, last_position
from tests.support.workbooks import openpyxl_file


async def test_a_created_client_comes_back_typed_with_exact_values(
    api: LedgerClient, business: dict[str, object], pool: asyncpg.Pool
) -> None:
    """Proves create_client decodes the 201 into the service's ClientBody with the
    values sent and zero money as Decimal, reports the commit's position and the key
    it sent, and that the query side answers the very same object."""
    created = await api.create_client(
        NewClient(
            business_name="Tech Solutions Inc.",
            first_name="Ama",
            business_email="ama@example.com",
        )
    )
    client = created.body
    assert isinstance(client, ClientBody)
    assert (created.status, created.accepted, created.replayed) == (201, False, False)
    assert created.position == await last_position(pool, id_of(business))
    assert len(created.idempotency_key) == 36
    assert (client.business_name, client.first_name, client.last_name) == (
        "Tech Solutions Inc.",
        "Ama",
        "",
    )
    assert client.business_email == "ama@example.com"
    assert client.business_id == business["business_id"]
    assert client.owner_id == business["owner_id"]
    assert client.category == "Uncategorised"
    assert (client.deposit_amount, client.unformated_balance) == (0, 0)
    assert isinstance(client.unformated_balance, Decimal)
    assert (client.balance, client.total_debit, client.total_credit) == (
        "0.00",
        "0.00",
        "0.00",
    )
    assert (client.archived, client.transactions) == (False, [])
    assert await api.get_client(client.id) == client


async def test_decimal_int_and_text_amounts_give_an_exact_balance(
    api: LedgerClient,
) -> None:
    """Proves amounts go out exactly in each accepted form (Decimal, int, text with
    thousands separators) and come back as exact Decimals: 20,351,822.93 + 5 - 0.01
    is 20,351,827.92 in the client, the statement and the summary, and
    minor_units gives the cents."""
    client_id = (await api.create_client(NewClient(business_name="Exact"))).body.id
    first = await api.post_transaction(
        client_id, "debit", Decimal("20351822.93"), date=dt.date(2024, 11, 4)
    )
    assert isinstance(first.body, TransactionBody)
    assert first.body.amount == Decimal("20351822.93")
    assert first.body.balance_after == Decimal("20351822.93")
    assert first.body.date == dt.date(2024, 11, 4)
    await api.post_transaction(client_id, "debit", 5, reference="INV-5")
    last = await api.post_transaction(
        client_id, "credit", "0.01", description="rounding"
    )
    assert (last.body.type, last.body.amount, last.body.description) == (
        "credit",
        Decimal("0.01"),
        "rounding",
    )
    assert last.body.balance_after == Decimal("20351827.92")

    client = await api.get_client(client_id)
    assert client.unformated_balance == Decimal("20351827.92")
    assert minor_units(client.unformated_balance) == 2035182792
    assert (client.balance, client.total_debit, client.total_credit) == (
        "20,351,827.92",
        "20,351,827.93",
        "0.01",
    )
    statement = await api.statement(client_id)
    assert isinstance(statement, StatementBody)
    assert [line.amount for line in statement.transactions] == [
        Decimal("20351822.93"),
        Decimal("5"),
        Decimal("0.01"),
    ]
    assert statement.closing_balance == Decimal("20351827.92")
    summary = await api.summary()
    assert (summary.customer_count, summary.total_balance) == (
        1,
        Decimal("20351827.92"),
    )


async def test_an_accepted_write_is_read_with_min_position(
    api: LedgerClient, business: dict[str, object], pool: asyncpg.Pool
) -> None:
    """Proves `respond_async` gives a 202 that is a success (`accepted`, with the
    commit's position: its event's position in the store), and a query with that
    `min_position` shows the write."""
    created = await api.create_client(
        NewClient(business_name="Later"), respond_async=True
    )
    assert (created.status, created.accepted) == (202, True)
    assert created.position == await last_position(pool, id_of(business))
    client = await api.get_client(created.body.id, min_position=created.position)
    assert client == created.body
    clients = await api.list_clients(min_position=created.position)
    assert [item.id for item in clients] == [created.body.id]


async def test_reversals_deposits_and_categories_are_typed(api: LedgerClient) -> None:
    """Proves the reversal, deposit and category routes decode into their bodies:
    a reversed transaction links both ways, reversing it again is a Conflict, and a
    deposit top-up and its reversal leave the deposit at zero."""
    category = (await api.create_category("Retail", description="Shops")).body
    assert (category.name, category.description, category.customer_count) == (
        "Retail",
        "Shops",
        0,
    )
    client_id = (
        await api.create_client(NewClient(business_name="Rev", category_id=category.id))
    ).body.id
    posted = (await api.post_transaction(client_id, "debit", "1,234.50")).body
    reversal = (await api.reverse_transaction(client_id, posted.id, reason="typo")).body
    assert (reversal.type, reversal.amount, reversal.reversal_of) == (
        "credit",
        Decimal("1234.5"),
        posted.id,
    )
    assert reversal.balance_after == 0
    with pytest.raises(Conflict) as again:
        await api.reverse_transaction(client_id, posted.id)
    assert again.value.message == f"Transaction {posted.id} has already been reversed"
    top_up = (await api.post_deposit(client_id, "debit", Decimal("40"))).body
    assert top_up.deposit_after == Decimal("40")
    undone = (await api.reverse_deposit(client_id, top_up.id)).body
    assert (undone.type, undone.deposit_after, undone.reversal_of) == (
        "credit",
        0,
        top_up.id,
    )
    lines = await api.deposits(client_id)
    assert [(line.id, line.reversed) for line in lines] == [
        (top_up.id, True),
        (undone.id, False),
    ]
    counts = {item.name: item.customer_count for item in await api.categories()}
    assert counts == {"Uncategorised": 0, "Retail": 1}
    assert (await api.list_clients(category_id=category.id))[0].id == client_id


async def test_import_export_feed_audit_and_health_are_typed(
    api: LedgerClient, business: dict[str, object]
) -> None:
    """Proves the multipart import (and its status), the export's bytes, the feed,
    a client's history, the audit report and the health routes through the client;
    a second import of the same file is a Conflict naming the first import."""
    workbook = openpyxl_file([["Name", "Upaid Amount"], ["Kofi Ltd", 12.5]])
    imported = await api.import_clients(workbook)
    assert imported.status == 201
    assert (imported.body.imported, imported.body.total_unpaid) == (1, Decimal("12.5"))
    status = await api.import_status(imported.body.import_id)
    assert (status.status, status.rows_committed) == ("done", 1)
    with pytest.raises(Conflict) as duplicate:
        await api.import_clients(workbook)
    assert duplicate.value.import_id == imported.body.import_id
    with pytest.raises(NotFound):
        await api.import_status("00000000-0000-0000-0000-000000000000")

    exported = await api.export_clients(str(business["bid"]))
    assert exported[:2] == b"PK"
    [client] = await api.list_clients()
    history = await api.client_events(client.id)
    assert [type(event.payload) for event in history] == [
        e.ClientCreated,
        e.TransactionPosted,
    ]
    page = await api.events(after=0, limit=1000)
    assert {event.event_id for event in history} <= {
        event.event_id for event in page.data
    }
    assert page.next_after == page.data[-1].position
    report = await api.audit_verify()
    assert (report.ok, report.businesses, report.differences) == (True, 1, [])
    assert (await api.healthz()).status == "ok"
    readiness = await api.readyz()
    assert readiness.checks["postgres"] == "ok"

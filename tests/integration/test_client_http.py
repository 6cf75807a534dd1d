"""shared/client's LedgerClient against the real service (in-process, with the relay
and projectors running): typed bodies with exact money, Laravel errors as typed
exceptions, and retries that reuse the Idempotency-Key so a write happens once.

A small aiohttp proxy sits between the client and the service where a test needs to
see or break the traffic: it records every request it receives and can, once each,
forward a request and then drop the connection instead of answering (the service
committed, the client saw a failure), or answer 503 / 409 "in progress" itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shared import events as e
from shared.client import (
    ClientChanges,
    Conflict,
    LedgerClient,
    NewClient,
    NotFound,
    PreconditionFailed,
    RetryPolicy,
    Unauthenticated,
    Unavailable,
    ValidationError,
    minor_units,
)
from shared.client.errors import IN_PROGRESS_MESSAGE
from shared.response_bodies import ClientBody, StatementBody, TransactionBody
from tests.integration.scenarios import id_of, last_position
from tests.support.workbooks import openpyxl_file

FAST = RetryPolicy(attempts_max=4, backoff_first_s=0.01, backoff_max_s=0.05)
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
ANSWER_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "date"}


@dataclass
class Proxy:
    """Forwards to the service; `faults` are used up one per request, in order."""

    upstream: str
    session: aiohttp.ClientSession
    faults: list[str] = field(default_factory=list)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = request.headers.get("Idempotency-Key")
        self.seen.append((request.method, request.path, key))
        fault = self.faults.pop(0) if self.faults else "forward"
        if fault == "unavailable":
            return web.json_response(
                {"message": "busy"}, status=503, headers={"Retry-After": "0"}
            )
        if fault == "in_progress":
            return web.json_response({"message": IN_PROGRESS_MESSAGE}, status=409)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS
        }
        async with self.session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            raw = await answer.read()
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ANSWER_HEADERS
            }
        if fault == "drop":  # the service answered; the client never sees it
            assert request.transport is not None
            request.transport.close()
        return web.Response(body=raw, status=answer.status, headers=kept)


def _base_url(service: TestClient) -> str:
    return str(service.make_url("")).rstrip("/")


@pytest.fixture
async def api(
    service: TestClient, business: dict[str, object]
) -> AsyncIterator[LedgerClient]:
    async with LedgerClient(
        _base_url(service), str(business["api_key"]), retry=FAST
    ) as client:
        yield client


@pytest.fixture
async def proxy(service: TestClient) -> AsyncIterator[tuple[Proxy, str]]:
    """The proxy and its base URL."""
    async with aiohttp.ClientSession() as session:
        proxy = Proxy(upstream=_base_url(service), session=session)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        server = TestServer(app)
        await server.start_server()
        try:
            yield proxy, str(server.make_url("")).rstrip("/")
        finally:
            await server.close()


@pytest.fixture
async def proxied(
    proxy: tuple[Proxy, str], business: dict[str, object]
) -> AsyncIterator[LedgerClient]:
    async with LedgerClient(proxy[1], str(business["api_key"]), retry=FAST) as client:
        yield client


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


async def test_a_float_amount_is_refused_before_anything_is_sent(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves a float (or a bool) amount raises TypeError in the client: the proxy
    receives no request at all for it."""
    client_id = (await proxied.create_client(NewClient(business_name="F"))).body.id
    before = list(proxy[0].seen)
    with pytest.raises(TypeError, match="not float"):
        await proxied.post_transaction(client_id, "debit", 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not float"):
        await proxied.post_deposit(client_id, "debit", 10.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not bool"):
        await proxied.post_transaction(client_id, "debit", True)
    assert proxy[0].seen == before
    assert [event.type for event in await proxied.client_events(client_id)] == [
        "client.created"
    ]


async def test_a_validation_failure_raises_the_field_errors_and_is_not_retried(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves a 422 becomes ValidationError carrying the service's field errors, sent
    exactly once (a business refusal is never retried), and writes nothing."""
    client_id = (await proxied.create_client(NewClient(business_name="V"))).body.id
    proxy[0].seen.clear()
    with pytest.raises(ValidationError) as refused:
        await proxied.post_transaction(
            client_id, "debit", Decimal("1.001"), date="2024-13-01"
        )
    assert refused.value.status == 422
    assert refused.value.message == "The given data was invalid."
    assert refused.value.errors == {
        "amount": ["The amount must have at most two decimals."],
        "date": ["The date is not a valid date."],
    }
    with pytest.raises(ValidationError) as blank:
        await proxied.create_client(NewClient(business_name="   "))
    assert blank.value.errors == {
        "business_name": ["The business name field is required."]
    }
    assert [(method, path) for method, path, _ in proxy[0].seen] == [
        ("POST", f"/api/v3/clients/{client_id}/transactions"),
        ("POST", "/api/v3/clients"),
    ]
    assert [event.type for event in await proxied.client_events(client_id)] == [
        "client.created"
    ]


async def test_refusals_raise_their_own_exception_types(
    api: LedgerClient, service: TestClient
) -> None:
    """Proves 404, 401, 409 and 412 each raise their own LedgerApiError subclass
    with the service's status and message."""
    with pytest.raises(NotFound) as missing:
        await api.get_client(987654321)
    assert (missing.value.status, missing.value.message) == (
        404,
        "Client 987654321 not found",
    )
    with pytest.raises(NotFound):
        await api.post_transaction(987654321, "debit", 1)
    async with LedgerClient(_base_url(service), "lk_wrong", retry=FAST) as stranger:
        with pytest.raises(Unauthenticated) as unknown:
            await stranger.list_clients()
    assert (unknown.value.status, unknown.value.message) == (401, "Unauthenticated.")

    await api.create_category("Wholesale")
    with pytest.raises(Conflict) as duplicate:
        await api.create_category(" wholesale ")
    assert duplicate.value.status == 409

    client_id = (await api.create_client(NewClient(business_name="V1"))).body.id
    versioned = await api.get_client_versioned(client_id)
    assert versioned.version == 1
    updated = await api.update_client(
        client_id, ClientChanges(last_name="Mensah"), if_match=versioned.version
    )
    assert (updated.status, updated.body.last_name) == (200, "Mensah")
    with pytest.raises(PreconditionFailed) as stale:
        await api.update_client(
            client_id, ClientChanges(last_name="Late"), if_match=versioned.version
        )
    assert stale.value.status == 412
    assert (await api.get_client(client_id)).last_name == "Mensah"


async def test_a_lost_response_is_retried_with_the_same_key_and_writes_once(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves the automatic retry is safe: the proxy forwards the first posting, the
    service commits it, and the proxy drops the connection; the client sends the same
    request with the same Idempotency-Key, gets the first response replayed, and the
    client's history holds exactly one transaction.posted, with that id and key."""
    client_id = (await proxied.create_client(NewClient(business_name="R"))).body.id
    proxy[0].seen.clear()
    proxy[0].faults.append("drop")
    posted = await proxied.post_transaction(client_id, "debit", Decimal("150.00"))

    path = f"/api/v3/clients/{client_id}/transactions"
    assert proxy[0].seen == [("POST", path, posted.idempotency_key)] * 2
    assert posted.replayed is True
    assert posted.status == 201
    assert posted.body.amount == Decimal("150")
    history = await proxied.client_events(client_id)
    postings = [
        event for event in history if isinstance(event.payload, e.TransactionPosted)
    ]
    assert len(postings) == 1
    assert postings[0].payload.transaction_id == posted.body.id  # type: ignore[union-attr]
    assert postings[0].metadata.idempotency_key == posted.idempotency_key
    client = await proxied.get_client(client_id)
    assert client.unformated_balance == Decimal("150")


@pytest.mark.parametrize("fault", ["unavailable", "in_progress"])
async def test_a_503_or_an_in_progress_409_is_retried_with_the_same_key(
    proxied: LedgerClient, proxy: tuple[Proxy, str], fault: str
) -> None:
    """Proves a 503 (Retry-After honoured) and a 409 "in progress" are retried with
    the same key, and the write happens once (the first attempt never reached the
    service, so the answer is not a replay)."""
    proxy[0].faults.append(fault)
    created = await proxied.create_client(NewClient(business_name=f"Retry {fault}"))
    assert proxy[0].seen == [("POST", "/api/v3/clients", created.idempotency_key)] * 2
    assert (created.status, created.replayed) == (201, False)
    names = [client.business_name for client in await proxied.list_clients()]
    assert names == [f"Retry {fault}"]


async def test_retries_are_bounded_and_end_in_the_typed_error(
    proxied: LedgerClient, proxy: tuple[Proxy, str]
) -> None:
    """Proves the client gives up after `attempts_max` attempts (all with one key)
    and raises Unavailable with the service's Retry-After; nothing was written."""
    proxy[0].faults.extend(["unavailable"] * FAST.attempts_max)
    with pytest.raises(Unavailable) as unavailable:
        await proxied.create_client(NewClient(business_name="Never"))
    assert unavailable.value.retry_after_s == 0
    keys = {key for _, _, key in proxy[0].seen}
    assert len(proxy[0].seen) == FAST.attempts_max and len(keys) == 1
    assert await proxied.list_clients() == []


async def test_a_caller_key_is_used_and_a_repeat_is_a_replay(api: LedgerClient) -> None:
    """Proves a caller's own Idempotency-Key is sent as given: the same command
    twice with it answers the first body, replayed, and creates one client."""
    first = await api.create_client(
        NewClient(business_name="Once"), idempotency_key="order-17"
    )
    again = await api.create_client(
        NewClient(business_name="Once"), idempotency_key="order-17"
    )
    assert (first.idempotency_key, again.idempotency_key) == ("order-17", "order-17")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.body == first.body
    assert len(await api.list_clients()) == 1


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

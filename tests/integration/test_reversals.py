"""Reversals over the real HTTP API: the original stays, the reversal undoes it, a
posting is reversed once even when two reversals race, deposits never go negative."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections import Counter
from decimal import Decimal

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from projections.schemas import schema_files
from services.bootstrap import create_database, migrate
from shared import domain
from shared import events as e
from shared.response_bodies import timestamp
from shared.store.event_store import load_stream
from shared.store.postgres import (
    shared_migrations,
    with_database,
)
from tests.integration.scenarios import cents, decoded, stream_versions
from tests.support.environment import Environment
from tests.support.service import http_client

Headers = dict[str, str]
Service = TestClient[web.Request, web.Application]
Answer = tuple[int, dict[str, object]]
ROUNDS = 6


def _headers(business: dict[str, object]) -> Headers:
    headers = business["headers"]
    assert isinstance(headers, dict)
    return headers


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


async def _post(service: Service, path: str, body: object, headers: Headers) -> Answer:
    response = await service.post(path, json=body, headers=headers)
    return response.status, decoded(await response.read())


async def _client(service: Service, headers: Headers) -> int:
    status, body = await _post(
        service, "/api/v3/clients", {"business_name": "Reversal Ltd"}, headers
    )
    assert status == 201, body
    client_id = body["id"]
    assert isinstance(client_id, int)
    return client_id


async def _posting(
    service: Service, client_id: int, kind: str, body: object, headers: Headers
) -> int:
    status, posted = await _post(
        service, f"/api/v3/clients/{client_id}/{kind}", body, headers
    )
    assert status == 201, posted
    entry_id = posted["id"]
    assert isinstance(entry_id, int)
    return entry_id


async def _json(service: Service, path: str, headers: Headers) -> object:
    """A GET's JSON body (object or array), numbers as exact Decimals."""
    response = await service.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return json.loads(await response.read(), parse_float=Decimal)


async def _reversal_event(pool: asyncpg.Pool, client_id: int, kind: str) -> object:
    return await pool.fetchrow(
        "SELECT recorded_at, payload FROM events WHERE stream_id = $1 AND type = $2",
        e.client_stream(client_id),
        kind,
    )


async def test_a_reversed_transaction_stays_in_the_statement_beside_its_reversal(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Debits of 150.00 (back-dated) and 40.00, then the 150.00 reversed with a
    reason: 201 with the reversal entry (a credit of 150.00 dated today, a new id,
    balance_after 40.00, reversal_of the original); the statement then lists all
    three lines, the original marked reversed, the totals count both postings
    (debit 190.00, credit 150.00) and the balance is 40.00; one transaction.reversed
    event holds the payload, on the client's receivable account."""
    headers = _headers(business)
    client_id = await _client(service, headers)
    back_dated = (_today() - dt.timedelta(days=10)).isoformat()
    original = await _posting(
        service,
        client_id,
        "transactions",
        {"type": "debit", "amount": "150.00", "date": back_dated, "reference": "R1"},
        headers,
    )
    other = await _posting(
        service, client_id, "transactions", {"type": "debit", "amount": 40}, headers
    )

    status, body = await _post(
        service,
        f"/api/v3/clients/{client_id}/transactions/{original}/reverse",
        {"reason": "Posted twice"},
        headers,
    )

    assert status == 201, body
    stored = await _reversal_event(pool, client_id, "transaction.reversed")
    assert stored is not None
    reversal_id = stored["payload"]["transaction_id"]
    # Dated the UTC day it was recorded (the original, 10 days back, is earlier).
    recorded_day = stored["recorded_at"].astimezone(dt.UTC).date().isoformat()
    # The client's receivable account, which the original debit went to.
    client = await _json(service, f"/api/v3/clients/{client_id}", headers)
    assert isinstance(client, dict)
    receivable = client["account_id"]
    assert receivable != client["deposit_account_id"]
    assert stored["payload"] == {
        "type": "transaction.reversed",
        "transaction_id": reversal_id,
        "reversal_of": original,
        "client_id": client_id,
        "account_id": receivable,
        "entry_type": "credit",
        "amount_minor": 15_000,
        "date": recorded_day,
        "reason": "Posted twice",
    }
    assert reversal_id not in (original, other)
    assert {**body, "amount": cents(body["amount"])} == {
        "id": reversal_id,
        "client_id": client_id,
        "type": "credit",
        "amount": 15_000,
        "date": recorded_day,
        "description": "Posted twice",
        "reference": "",
        "created_at": timestamp(stored["recorded_at"]),
        "balance_after": body["balance_after"],
        "reversed": False,
        "reversal_of": original,
    }
    assert cents(body["balance_after"]) == 4_000
    statement = await _json(
        service, f"/api/v3/clients/{client_id}/transactions", headers
    )
    assert isinstance(statement, dict)
    lines = statement["transactions"]
    assert isinstance(lines, list)
    assert [
        (
            line["id"],
            line["type"],
            cents(line["amount"]),
            cents(line["balance_after"]),
            line["reversed"],
            line["reversal_of"],
        )
        for line in lines
    ] == [
        (original, "debit", 15_000, 15_000, True, None),
        (other, "debit", 4_000, 19_000, False, None),
        (reversal_id, "credit", 15_000, 4_000, False, original),
    ]
    assert lines[0]["reference"] == "R1"
    assert (
        statement["total_debit"],
        statement["total_credit"],
        statement["balance"],
    ) == ("190.00", "150.00", "40.00")
    assert cents(statement["unformated_balance"]) == 4_000


async def test_two_reversals_of_one_transaction_at_once_give_one_201_and_one_409(
    service: Service,
    environment: Environment,
    pool: asyncpg.Pool,
    business: dict[str, object],
) -> None:
    """Round after round, a fresh debit of 10.00 gets two reversals fired at once
    (in odd rounds through two API instances, each with its own appender, so they
    race on the stream's version; in even rounds through one, in one batch): each
    round exactly one answers 201 and the other 409 naming the transaction. After
    all rounds the client's totals are exact (debit = credit = 60.00, balance 0) and
    the stream holds one reversal per debit with no version gap."""
    headers = _headers(business)
    client_id = await _client(service, headers)
    async with http_client(environment.settings) as second:
        for round_number in range(ROUNDS):
            original = await _posting(
                service,
                client_id,
                "transactions",
                {"type": "debit", "amount": "10.00"},
                headers,
            )
            path = f"/api/v3/clients/{client_id}/transactions/{original}/reverse"
            other = second if round_number % 2 else service
            answers = await asyncio.gather(
                _post(service, path, {}, headers), _post(other, path, {}, headers)
            )
            assert sorted(status for status, _ in answers) == [201, 409], answers
            refused = next(body for status, body in answers if status == 409)
            assert refused == {
                "message": f"Transaction {original} has already been reversed"
            }
    client = decoded(
        await (
            await service.get(f"/api/v3/clients/{client_id}", headers=headers)
        ).read()
    )
    assert (client["total_debit"], client["total_credit"], client["balance"]) == (
        "60.00",
        "60.00",
        "0.00",
    )
    stream_id = e.client_stream(client_id)
    assert await stream_versions(pool, stream_id) == list(range(1, 2 * ROUNDS + 2))
    counts = await pool.fetch(
        "SELECT type, count(*) AS n FROM events WHERE stream_id = $1 GROUP BY type",
        stream_id,
    )
    assert {row["type"]: row["n"] for row in counts} == {
        "client.created": 1,
        "transaction.posted": ROUNDS,
        "transaction.reversed": ROUNDS,
    }


async def test_a_deposit_reversal_that_would_make_the_deposit_negative_is_refused(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """100.00 received, 60.00 used: reversing the 100.00 top-up is a 422 and writes
    nothing; reversing the 60.00 use answers 201 (a debit, deposit_after 100.00);
    then the top-up's reversal, sent with an empty body, answers 201 with
    deposit_after 0. The deposits list
    shows the four lines with reversed and reversal_of, and the client's deposit is
    exactly 0."""
    headers = _headers(business)
    client_id = await _client(service, headers)
    base = f"/api/v3/clients/{client_id}/deposits"
    top_up = await _posting(
        service, client_id, "deposits", {"type": "debit", "amount": 100}, headers
    )
    used = await _posting(
        service, client_id, "deposits", {"type": "credit", "amount": 60}, headers
    )
    versions = await stream_versions(pool, e.client_stream(client_id))

    refused = await _post(service, f"{base}/{top_up}/reverse", {}, headers)

    assert refused == (
        422,
        {
            "message": "The given data was invalid.",
            "errors": {
                "amount": ["The amount to reverse may not be greater than the deposit."]
            },
        },
    )
    assert await stream_versions(pool, e.client_stream(client_id)) == versions
    status, back = await _post(
        service, f"{base}/{used}/reverse", {"reason": "Refunded"}, headers
    )
    assert status == 201, back
    assert (back["type"], cents(back["amount"]), cents(back["deposit_after"])) == (
        "debit",
        6_000,
        10_000,
    )
    assert (back["reversal_of"], back["description"]) == (used, "Refunded")
    status, gone = await _post(service, f"{base}/{top_up}/reverse", None, headers)
    assert status == 201, gone
    assert cents(gone["deposit_after"]) == 0
    listed = await _json(service, base, headers)
    assert isinstance(listed, list)
    assert [
        (line["id"], line["type"], line["reversed"], line["reversal_of"])
        for line in listed
    ] == [
        (top_up, "debit", True, None),
        (used, "credit", True, None),
        (back["id"], "debit", False, used),
        (gone["id"], "credit", False, top_up),
    ]
    client = decoded(
        await (
            await service.get(f"/api/v3/clients/{client_id}", headers=headers)
        ).read()
    )
    assert cents(client["deposit_amount"]) == 0


async def test_a_top_up_reversal_racing_a_deposit_use_never_goes_below_zero(
    service: Service,
    environment: Environment,
    business: dict[str, object],
) -> None:
    """Round after round, a fresh client receives 100.00, then its reversal and a
    use of 60.00 are fired at once through two API instances: only one of them fits,
    so exactly one answers 201 and the other 422, and the client's deposit ends at 0
    (the reversal won) or 40.00 (the use won), never below zero."""
    headers = _headers(business)
    async with http_client(environment.settings) as second:
        for _ in range(ROUNDS):
            client_id = await _client(service, headers)
            base = f"/api/v3/clients/{client_id}/deposits"
            top_up = await _posting(
                service,
                client_id,
                "deposits",
                {"type": "debit", "amount": 100},
                headers,
            )
            reversal, use = await asyncio.gather(
                _post(service, f"{base}/{top_up}/reverse", {}, headers),
                _post(second, base, {"type": "credit", "amount": 60}, headers),
            )
            assert Counter([reversal[0], use[0]]) == {201: 1, 422: 1}, (reversal, use)
            client = decoded(
                await (
                    await service.get(f"/api/v3/clients/{client_id}", headers=headers)
                ).read()
            )
            expected_minor = 0 if reversal[0] == 201 else 4_000
            assert cents(client["deposit_amount"]) == expected_minor


async def test_the_fold_of_the_events_gives_the_figures_the_projection_shows(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """After postings and reversals of both kinds, evolve_client over the client's
    events (what an audit recomputes) gives exactly rm_clients' debit, credit and
    deposit: 25.00 + 7.00 debited, 25.00 credited back, 12.00 deposited, 5.00 used
    and that use reversed."""
    headers = _headers(business)
    client_id = await _client(service, headers)
    base = f"/api/v3/clients/{client_id}"
    debit = await _posting(
        service, client_id, "transactions", {"type": "debit", "amount": 25}, headers
    )
    await _posting(
        service, client_id, "transactions", {"type": "debit", "amount": 7}, headers
    )
    await _posting(
        service, client_id, "deposits", {"type": "debit", "amount": 12}, headers
    )
    used = await _posting(
        service, client_id, "deposits", {"type": "credit", "amount": 5}, headers
    )
    for path in (f"transactions/{debit}", f"deposits/{used}"):
        status, body = await _post(service, f"{base}/{path}/reverse", {}, headers)
        assert status == 201, body

    state = None
    for event in await load_stream(pool, e.client_stream(client_id)):
        state = domain.evolve_client(state, event)
    row = await pool.fetchrow(
        "SELECT debit_minor, credit_minor, deposit_minor FROM rm_clients"
        " WHERE client_id = $1",
        client_id,
    )

    assert state is not None and row is not None
    assert (state.debit_minor, state.credit_minor, state.deposit_minor) == (
        3_200,
        2_500,
        1_200,
    )
    assert (row["debit_minor"], row["credit_minor"], row["deposit_minor"]) == (
        3_200,
        2_500,
        1_200,
    )


async def test_an_idempotent_reversal_retry_replays_the_first_answer(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """A reversal retried with the same Idempotency-Key answers the first 201 (same
    bytes, Idempotent-Replayed) instead of a 409, and writes nothing; the same key
    with another reason is a 422."""
    headers = _headers(business)
    client_id = await _client(service, headers)
    original = await _posting(
        service, client_id, "transactions", {"type": "credit", "amount": 5}, headers
    )
    path = f"/api/v3/clients/{client_id}/transactions/{original}/reverse"
    keyed = {**headers, "Idempotency-Key": f"reverse-{uuid.uuid4()}"}
    first = await service.post(path, json={"reason": "x"}, headers=keyed)
    assert first.status == 201
    versions = await stream_versions(pool, e.client_stream(client_id))

    retry = await service.post(path, json={"reason": "x"}, headers=keyed)
    other = await service.post(path, json={"reason": "y"}, headers=keyed)

    assert (retry.status, await retry.read()) == (201, await first.read())
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert other.status == 422
    assert await stream_versions(pool, e.client_stream(client_id)) == versions


async def test_bad_reversals_answer_a_clear_4xx_and_write_nothing(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Unknown ids, another client's transaction and a deposit id on the
    transactions route are 404; reversing a reversal is a 422; a reason that is not
    a string or is over 255 characters is a 422; a non-JSON body is a 415; a
    non-numeric id is a 404. The client's stream is unchanged by all of them."""
    headers = _headers(business)
    client_id = await _client(service, headers)
    stranger = await _client(service, headers)
    original = await _posting(
        service, client_id, "transactions", {"type": "debit", "amount": 1}, headers
    )
    foreign = await _posting(
        service, stranger, "transactions", {"type": "debit", "amount": 1}, headers
    )
    deposit = await _posting(
        service, client_id, "deposits", {"type": "debit", "amount": 1}, headers
    )
    base = f"/api/v3/clients/{client_id}"
    status, reversal = await _post(
        service, f"{base}/transactions/{original}/reverse", {}, headers
    )
    assert status == 201
    stream_id = e.client_stream(client_id)
    versions = await stream_versions(pool, stream_id)

    answers = [
        await service.post(
            f"{base}/transactions/{path}/reverse", json=body, headers=headers
        )
        for path, body in (
            (foreign, {}),
            (deposit, {}),
            (999_999_999, {}),
            ("abc", {}),
            (reversal["id"], {}),
            (original, {"reason": 5}),
            (original, {"reason": "r" * 256}),
        )
    ]
    media = await service.post(
        f"{base}/deposits/{deposit}/reverse",
        data=b"reason=x",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert [answer.status for answer in answers] == [404, 404, 404, 404, 422, 422, 422]
    bodies = [decoded(await answer.read()) for answer in answers]
    assert bodies[0] == {"message": f"Transaction {foreign} not found"}
    assert bodies[4]["errors"] == {
        "transaction_id": [
            "A reversal cannot be reversed; post a new transaction instead."
        ]
    }
    assert bodies[5]["errors"] == {"reason": ["The reason must be a string."]}
    assert bodies[6]["errors"] == {
        "reason": ["The reason may not be greater than 255 characters."]
    }
    assert media.status == 415
    assert await stream_versions(pool, stream_id) == versions


async def test_an_existing_database_gets_the_reversal_columns_by_migration(
    environment: Environment,
) -> None:
    """A database migrated before reversals existed, with a statement line in it,
    gets exactly the new file applied on the next migrate; the old line then reads
    as not reversed and no reversal, and a second migrate applies nothing."""
    name = f"ledger_test_mig_{uuid.uuid4().hex[:12]}"
    admin_url = with_database(environment.server_url, name)
    await create_database(admin_url)
    change = "projection/statements/0002_reversals.sql"
    everything = shared_migrations() + schema_files()
    try:
        await migrate(admin_url, [item for item in everything if item[0] != change])
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(
                "INSERT INTO rm_transactions VALUES"
                " (1, 2, 3, 'debit', 100, '2024-11-04', '', '', now(), 9)"
            )
            assert await migrate(admin_url, everything) == [change]
            row = await conn.fetchrow(
                "SELECT reversed, reversal_of FROM rm_transactions"
                " WHERE transaction_id = 1"
            )
            assert (row["reversed"], row["reversal_of"]) == (False, None)
            assert await migrate(admin_url, everything) == []
        finally:
            await conn.close()
    finally:
        conn = await asyncpg.connect(with_database(environment.server_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

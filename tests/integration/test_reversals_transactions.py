"""Reversals of transactions over the real HTTP API: the original stays in the
statement beside its reversal, and a transaction is reversed once even when two
reversals race."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg

from shared import events as e
from shared.response_bodies import timestamp
from tests.integration.reversal_calls import (
    ROUNDS,
    Answer,
    Headers,
    Service,
    business_headers,
    client_body,
    get_json,
    new_client,
    new_posting,
    post_json,
    reversal_event,
    utc_today,
)
from tests.integration.scenarios import cents, stream_versions
from tests.support.environment import Environment
from tests.support.service import http_client


async def _reverse_a_back_dated_debit(
    service: Service, client_id: int, headers: Headers
) -> tuple[int, int, Answer]:
    """Debits of 150.00 (back-dated 10 days, reference R1) and 40.00, then the
    150.00 reversed with a reason: both debits' ids and the reversal's answer."""
    back_dated = (utc_today() - dt.timedelta(days=10)).isoformat()
    original = await new_posting(
        service,
        client_id,
        "transactions",
        {"type": "debit", "amount": "150.00", "date": back_dated, "reference": "R1"},
        headers,
    )
    other = await new_posting(
        service, client_id, "transactions", {"type": "debit", "amount": 40}, headers
    )
    answer = await post_json(
        service,
        f"/api/v3/clients/{client_id}/transactions/{original}/reverse",
        {"reason": "Posted twice"},
        headers,
    )
    return original, other, answer


async def _receivable_account(
    service: Service, client_id: int, headers: Headers
) -> object:
    """The client's receivable account, which a debit goes to (not its deposit
    account)."""
    client = await get_json(service, f"/api/v3/clients/{client_id}", headers)
    assert isinstance(client, dict)
    receivable = client["account_id"]
    assert receivable != client["deposit_account_id"]
    return receivable


async def _assert_the_statement_lists_all_three(
    service: Service,
    client_id: int,
    headers: Headers,
    debits: tuple[int, int],
    reversal_id: int,
) -> None:
    """The original marked reversed, the other debit and the reversal, with running
    balances; totals debit 190.00, credit 150.00, balance 40.00."""
    original, other = debits
    statement = await get_json(
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


async def test_a_reversed_transaction_stays_in_the_statement_beside_its_reversal(
    service: Service, pool: asyncpg.Pool, business: dict[str, object]
) -> None:
    """Debits of 150.00 (back-dated) and 40.00, then the 150.00 reversed with a
    reason: 201 with the reversal entry (a credit of 150.00 dated today, a new id,
    balance_after 40.00, reversal_of the original); the statement then lists all
    three lines, the original marked reversed, the totals count both postings
    (debit 190.00, credit 150.00) and the balance is 40.00; one transaction.reversed
    event holds the payload, on the client's receivable account."""
    headers = business_headers(business)
    client_id = await new_client(service, headers)
    original, other, (status, body) = await _reverse_a_back_dated_debit(
        service, client_id, headers
    )

    assert status == 201, body
    stored = await reversal_event(pool, client_id, "transaction.reversed")
    assert stored is not None
    reversal_id = stored["payload"]["transaction_id"]
    # Dated the UTC day it was recorded (the original, 10 days back, is earlier).
    recorded_day = stored["recorded_at"].astimezone(dt.UTC).date().isoformat()
    assert stored["payload"] == {
        "type": "transaction.reversed",
        "transaction_id": reversal_id,
        "reversal_of": original,
        "client_id": client_id,
        "account_id": await _receivable_account(service, client_id, headers),
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
    await _assert_the_statement_lists_all_three(
        service, client_id, headers, (original, other), reversal_id
    )


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
    headers = business_headers(business)
    client_id = await new_client(service, headers)
    async with http_client(environment.settings) as second:
        for round_number in range(ROUNDS):
            original = await new_posting(
                service,
                client_id,
                "transactions",
                {"type": "debit", "amount": "10.00"},
                headers,
            )
            path = f"/api/v3/clients/{client_id}/transactions/{original}/reverse"
            other = second if round_number % 2 else service
            answers = await asyncio.gather(
                post_json(service, path, {}, headers),
                post_json(other, path, {}, headers),
            )
            assert sorted(status for status, _ in answers) == [201, 409], answers
            refused = next(body for status, body in answers if status == 409)
            assert refused == {
                "message": f"Transaction {original} has already been reversed"
            }
    client = await client_body(service, client_id, headers)
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

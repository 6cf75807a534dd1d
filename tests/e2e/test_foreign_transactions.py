"""Nobody else's transaction holds the ledger back: with a write transaction held open
in another database of the same server, and then in the ledger's own database (an
operator's session, a batch job), postings still answer 201 within read-your-writes,
and the feed and the read models show them. Publication follows the ledger's own
commits only (migration 0011); it once stopped below the server-wide
pg_snapshot_xmin, and a posting then answered 202 after the full wait."""

from __future__ import annotations

import asyncpg

from shared.store.postgres import with_database
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import LedgerService

POSTINGS = 5


async def _post_while_held(api: Api, client_id: int, foreign_url: str) -> list[int]:
    """Hold a write transaction open at `foreign_url` while posting debits of 1.00;
    each must answer 201 (202 means read-your-writes timed out). Their positions."""
    foreign = await asyncpg.connect(foreign_url)
    try:
        await foreign.execute("BEGIN")
        await foreign.fetchval("SELECT pg_current_xact_id()")
        positions = []
        for _ in range(POSTINGS):
            reply = await api.post(
                f"/api/v3/clients/{client_id}/transactions",
                {"type": "debit", "amount": "1.00"},
            )
            assert reply.status == 201, reply.body
            positions.append(int(reply.headers["X-Ledger-Position"]))
        fetched = await api.get(f"/api/v3/clients/{client_id}")
        assert fetched.status == 200
        return positions
    finally:
        await foreign.close()


async def test_postings_answer_201_while_others_hold_write_transactions_open(
    api: Api, ledger: LedgerService
) -> None:
    """Proves publication ignores transactions that are not the ledger's, by holding
    one open in the `postgres` database, then one in the ledger's own database, while
    posting five debits of 1.00 each time: all ten answer 201, the balance is exactly
    10.00 and the feed serves all ten postings, in position order."""
    client = await api.create_client(business_name="Held back never")
    admin_url = ledger.environment.admin_url
    positions = await _post_while_held(
        api, client["id"], with_database(admin_url, "postgres")
    )
    positions += await _post_while_held(api, client["id"], admin_url)
    fetched = await api.get(f"/api/v3/clients/{client['id']}")
    assert fetched.body["total_debit"] == "10.00"
    assert fetched.body["balance"] == "10.00"
    feed = await api.get("/api/v3/events", params={"limit": "1000"})
    posted = [
        event["position"]
        for event in feed.body["data"]
        if event["type"] == "transaction.posted"
        and event["payload"]["client_id"] == client["id"]
    ]
    assert posted == positions == sorted(positions)

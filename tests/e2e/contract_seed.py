"""What the contract tests share: how many requests they generate, and the business
they run against (a category, a client with postings: real rows for generated ids
and bodies to reach).

LEDGER_FUZZ=1 (`make fuzz`) switches on the long runs; LEDGER_FUZZ_EXAMPLES (default
15, 200 under `make fuzz`) sets the examples per operation.
"""

from __future__ import annotations

import os

from tests.e2e.ledger_api import Api

FUZZ = os.environ.get("LEDGER_FUZZ", "") == "1"
EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "200" if FUZZ else "15"))


async def seed(api: Api) -> int:
    """A category, a client with a transaction and a deposit, for ids to hit; the
    position of the last write (202, written but not yet visible, is fine here)."""
    client_id = 0
    position = 0
    for path, body in [
        ("/api/v3/clients/category", {"name": "Contract"}),
        ("/api/v3/clients", {"business_name": "Contract client"}),
        ("/api/v3/clients/{id}/transactions", {"type": "debit", "amount": "120.50"}),
        ("/api/v3/clients/{id}/deposits", {"type": "debit", "amount": 30}),
    ]:
        reply = await api.post(path.format(id=client_id), body)
        assert reply.status in (201, 202), reply.body
        if path == "/api/v3/clients":
            client_id = reply.body["id"]
        position = int(reply.headers["X-Ledger-Position"])
    return position

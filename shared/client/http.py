"""LedgerClient: every route of the ledger API as a typed async method.

Queries (shared/client/queries.py) return the decoded body; commands
(shared/client/commands.py) return `Committed[body]` with the status, the position and
the Idempotency-Key used. Every write carries an `Idempotency-Key` (a fresh uuid4
unless the caller passes one) and is retried with that same key when its outcome is
unknown (shared/client/transport.py). Refusals raise the exceptions of
shared/client/errors.py. Amounts go out as Decimal, int or str, never float; money
comes back as Decimal (`models.minor_units` gives integer cents).
"""

from __future__ import annotations

from shared.client.commands import Commands
from shared.client.queries import Queries


class LedgerClient(Queries, Commands):
    """`async with LedgerClient("http://ledger:8080", api_key) as api: ...`"""

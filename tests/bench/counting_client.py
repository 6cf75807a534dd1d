"""The HTTP API as the postings benchmark drives it: one business's key, 1.00 debits
that count what committed (201, or 202 committed but not yet visible), each with a
fresh `Idempotency-Key` when asked (a uuid4, as the Python client sends it), reads
that wait for a position, and the summary that checks the total."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import aiohttp

# A client's personal fields and a posting's texts, as the personal-data phase sends
# them: each one sealed under the client's key (shared/personal_data.py).
PROFILE = {
    "first_name": "Akosua",
    "last_name": "Boateng",
    "phone_number": "+233 24 555 0101",
    "business_address": "12 Ring Road, Accra",
    "business_phone": "0302 555 0102",
    "business_location": "Osu",
}
TEXTS = {"description": "Rice, oil and sugar", "reference": "INV-2026-0042"}


class Ledger:
    """The HTTP API with one business's key; counts what it committed."""

    def __init__(self, http: aiohttp.ClientSession, api_key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.committed = 0  # 201, or 202 (committed, not yet visible)
        self.accepted = 0  # of which 202
        self.position_max = 0
        self.errors: dict[str, int] = {}

    def note_error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def create_client(self, number: int, personal: bool = False) -> int:
        """A client with a business name; with every personal field if `personal`."""
        body = {"business_name": f"Bench client {number}"}
        if personal:
            body.update(PROFILE, business_email=f"client{number}@example.com")
        async with self.http.post(
            "/api/v3/clients", json=body, headers=self.headers
        ) as response:
            if response.status != 201:
                raise RuntimeError(
                    f"create client: {response.status} {await response.text()}"
                )
            created: dict[str, Any] = await response.json()
            return int(created["id"])

    async def post(
        self,
        client_id: int,
        respond_async: bool = False,
        keyed: bool = False,
        personal: bool = False,
    ) -> int | None:
        """Post a 1.00 debit, with a fresh Idempotency-Key if `keyed`, with a
        description and a reference (sealed: personal fields) if `personal`; the
        position when it committed, None when it did not."""
        headers = dict(self.headers)
        if respond_async:
            headers["Prefer"] = "respond-async"
        if keyed:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        try:
            async with self.http.post(
                f"/api/v3/clients/{client_id}/transactions",
                json={"type": "debit", "amount": "1.00", **(TEXTS if personal else {})},
                headers=headers,
            ) as response:
                await response.read()
                if response.status not in (201, 202):
                    self.note_error(f"HTTP {response.status}")
                    return None
                position = int(response.headers["X-Ledger-Position"])
        except (aiohttp.ClientError, TimeoutError) as error:
            self.note_error(type(error).__name__)  # may or may not have committed
            return None
        self.committed += 1
        self.accepted += response.status == 202
        self.position_max = max(self.position_max, position)
        return position

    async def get_client(self, client_id: int, min_position: int | None = None) -> int:
        headers = dict(self.headers)
        if min_position is not None:
            headers["X-Ledger-Min-Position"] = str(min_position)
        async with self.http.get(
            f"/api/v3/clients/{client_id}", headers=headers
        ) as response:
            await response.read()
            return response.status

    async def summary(self) -> dict[str, Any]:
        headers = {**self.headers, "X-Ledger-Min-Position": str(self.position_max)}
        async with self.http.get(
            "/api/v3/clients/summary", headers=headers
        ) as response:
            text = await response.text()
            if response.status != 200:
                raise RuntimeError(f"summary: {response.status} {text}")
            body: dict[str, Any] = json.loads(text, parse_float=Decimal)
            return body

"""LedgerClient's queries: every GET route, decoded into its typed body.

`min_position` (a `Committed.position` from any service's write) makes the service
answer only once its read models include that position (503, retried, if it takes
longer than its bound): read-your-writes across services.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from shared.client import models as m
from shared.client.session import ApiSession
from shared.events import Envelope


class Queries(ApiSession):
    async def list_clients(
        self,
        *,
        category_id: int | None = None,
        archived: bool | None = None,
        min_position: int | None = None,
    ) -> list[m.ClientBody]:
        params = m.query_params(category_id=category_id, archived=archived)
        path = "/api/v3/clients"
        return await self._read(path, list[m.ClientBody], params, min_position)

    async def list_clients_page(
        self,
        page: int,
        per_page: int,
        *,
        category_id: int | None = None,
        archived: bool | None = None,
        min_position: int | None = None,
    ) -> m.ClientsPage:
        params = m.query_params(
            page=page, per_page=per_page, category_id=category_id, archived=archived
        )
        answer = await self._get("/api/v3/clients", params, min_position)
        total = int(answer.headers["X-Total-Count"])
        clients = msgspec.json.decode(answer.body, type=list[m.ClientBody])
        return m.ClientsPage(clients=clients, total=total)

    async def get_client(
        self,
        client_id: int,
        *,
        as_of: dt.datetime | dt.date | None = None,
        min_position: int | None = None,
    ) -> m.ClientBody:
        params = m.query_params(as_of=as_of)
        path = f"/api/v3/clients/{client_id}"
        return await self._read(path, m.ClientBody, params, min_position)

    async def get_client_versioned(
        self, client_id: int, *, min_position: int | None = None
    ) -> m.Versioned[m.ClientBody]:
        """The client and its version, for `update_client(..., if_match=version)`."""
        answer = await self._get(f"/api/v3/clients/{client_id}", None, min_position)
        version = int(answer.headers["ETag"].removeprefix("W/").strip('"'))
        body = msgspec.json.decode(answer.body, type=m.ClientBody)
        return m.Versioned(body=body, version=version)

    async def summary(
        self,
        *,
        category_id: int | None = None,
        as_of: dt.datetime | dt.date | None = None,
        min_position: int | None = None,
    ) -> m.SummaryBody:
        params = m.query_params(category_id=category_id, as_of=as_of)
        path = "/api/v3/clients/summary"
        return await self._read(path, m.SummaryBody, params, min_position)

    async def statement(
        self,
        client_id: int,
        *,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        min_position: int | None = None,
    ) -> m.StatementBody:
        params = m.query_params(**{"from": date_from, "to": date_to})
        path = f"/api/v3/clients/{client_id}/transactions"
        return await self._read(path, m.StatementBody, params, min_position)

    async def deposits(
        self,
        client_id: int,
        *,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        min_position: int | None = None,
    ) -> list[m.DepositBody]:
        params = m.query_params(**{"from": date_from, "to": date_to})
        path = f"/api/v3/clients/{client_id}/deposits"
        return await self._read(path, list[m.DepositBody], params, min_position)

    async def categories(
        self, *, min_position: int | None = None
    ) -> list[m.CategoryBody]:
        path = "/api/v3/clients/categories"
        return await self._read(path, list[m.CategoryBody], None, min_position)

    async def import_status(self, import_id: str) -> m.ImportStatus:
        path = f"/api/v3/clients/imports/{import_id}"
        return await self._read(path, m.ImportStatus)

    async def export_clients(
        self,
        bid: str,
        *,
        category_id: int | None = None,
        min_position: int | None = None,
    ) -> bytes:
        """The .xlsx export's bytes (the route is keyed by the business's bid)."""
        path = f"/api/v3/clients/clients-print/{bid}"
        params = m.query_params(category_id=category_id)
        return (await self._get(path, params, min_position)).body

    async def client_events(self, client_id: int) -> list[Envelope]:
        """The client's whole history from the event store, oldest first."""
        path = f"/api/v3/clients/{client_id}/events"
        return (await self._read(path, m.ClientEvents)).data

    async def events(self, after: int = 0, limit: int = 100) -> m.EventPage:
        """One page of the business's events in publication order (the feed)."""
        params = m.query_params(after=after, limit=limit)
        return await self._read("/api/v3/events", m.EventPage, params)

    async def audit_verify(self) -> m.AuditReport:
        return await self._read("/api/v3/audit/verify", m.AuditReport)

    async def healthz(self) -> m.Health:
        return await self._read("/healthz", m.Health)

    async def readyz(self) -> m.Readiness:
        """Readiness; a 503 "not ready" is an answer here, not an error."""
        answer = await self._get("/readyz", passed=(503,))
        return msgspec.json.decode(answer.body, type=m.Readiness)

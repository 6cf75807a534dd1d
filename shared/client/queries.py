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

_client = msgspec.json.Decoder(m.ClientBody)
_clients = msgspec.json.Decoder(list[m.ClientBody])
_statement = msgspec.json.Decoder(m.StatementBody)
_summary = msgspec.json.Decoder(m.SummaryBody)
_deposits = msgspec.json.Decoder(list[m.DepositBody])
_categories = msgspec.json.Decoder(list[m.CategoryBody])
_import_status = msgspec.json.Decoder(m.ImportStatus)
_audit = msgspec.json.Decoder(m.AuditReport)
_event_page = msgspec.json.Decoder(m.EventPage)
_client_events = msgspec.json.Decoder(m.ClientEvents)
_health = msgspec.json.Decoder(m.Health)
_readiness = msgspec.json.Decoder(m.Readiness)


class Queries(ApiSession):
    async def list_clients(
        self,
        *,
        category_id: int | None = None,
        archived: bool | None = None,
        min_position: int | None = None,
    ) -> list[m.ClientBody]:
        params = m.query_params(category_id=category_id, archived=archived)
        answer = await self._get("/api/v3/clients", params, min_position)
        return _clients.decode(answer.body)

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
        return m.ClientsPage(clients=_clients.decode(answer.body), total=total)

    async def get_client(
        self,
        client_id: int,
        *,
        as_of: dt.datetime | dt.date | None = None,
        min_position: int | None = None,
    ) -> m.ClientBody:
        params = m.query_params(as_of=as_of)
        answer = await self._get(f"/api/v3/clients/{client_id}", params, min_position)
        return _client.decode(answer.body)

    async def get_client_versioned(
        self, client_id: int, *, min_position: int | None = None
    ) -> m.Versioned[m.ClientBody]:
        """The client and its version, for `update_client(..., if_match=version)`."""
        answer = await self._get(f"/api/v3/clients/{client_id}", None, min_position)
        version = int(answer.headers["ETag"].removeprefix("W/").strip('"'))
        return m.Versioned(body=_client.decode(answer.body), version=version)

    async def summary(
        self,
        *,
        category_id: int | None = None,
        as_of: dt.datetime | dt.date | None = None,
        min_position: int | None = None,
    ) -> m.SummaryBody:
        params = m.query_params(category_id=category_id, as_of=as_of)
        answer = await self._get("/api/v3/clients/summary", params, min_position)
        return _summary.decode(answer.body)

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
        return _statement.decode((await self._get(path, params, min_position)).body)

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
        return _deposits.decode((await self._get(path, params, min_position)).body)

    async def categories(
        self, *, min_position: int | None = None
    ) -> list[m.CategoryBody]:
        answer = await self._get("/api/v3/clients/categories", None, min_position)
        return _categories.decode(answer.body)

    async def import_status(self, import_id: str) -> m.ImportStatus:
        answer = await self._get(f"/api/v3/clients/imports/{import_id}")
        return _import_status.decode(answer.body)

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
        answer = await self._get(f"/api/v3/clients/{client_id}/events")
        return _client_events.decode(answer.body).data

    async def events(self, after: int = 0, limit: int = 100) -> m.EventPage:
        """One page of the business's events in publication order (the feed)."""
        params = m.query_params(after=after, limit=limit)
        return _event_page.decode((await self._get("/api/v3/events", params)).body)

    async def audit_verify(self) -> m.AuditReport:
        return _audit.decode((await self._get("/api/v3/audit/verify")).body)

    async def healthz(self) -> m.Health:
        return _health.decode((await self._get("/healthz")).body)

    async def readyz(self) -> m.Readiness:
        """Readiness; a 503 "not ready" is an answer here, not an error."""
        answer = await self._get("/readyz", passed=(503,))
        return _readiness.decode(answer.body)

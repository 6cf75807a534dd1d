"""LedgerClient's commands: every write route, each with an Idempotency-Key.

Each returns `Committed[body]`: 201/200 once the read models show the write, 202 when
it is committed but not yet visible (`respond_async=True`, or the service's wait ran
out). Amounts are Decimal, int or str; a float raises TypeError before anything is
sent.
"""

from __future__ import annotations

import datetime as dt

import aiohttp
import msgspec

from shared.client import models as m
from shared.client.session import ApiSession

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

_client = msgspec.json.Decoder(m.ClientBody)
_transaction = msgspec.json.Decoder(m.TransactionBody)
_deposit = msgspec.json.Decoder(m.DepositBody)
_category = msgspec.json.Decoder(m.CategoryBody)
_deleted = msgspec.json.Decoder(m.Deleted)
_import = msgspec.json.Decoder(m.ImportResult)


class Commands(ApiSession):
    async def create_client(
        self,
        client: m.NewClient,
        *,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.ClientBody]:
        return await self._write(
            "POST",
            "/api/v3/clients",
            _client,
            json=client,
            key=idempotency_key,
            respond_async=respond_async,
        )

    async def update_client(
        self,
        client_id: int,
        changes: m.ClientChanges,
        *,
        if_match: int | None = None,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.ClientBody]:
        """412 (PreconditionFailed) when `if_match` is not the client's version."""
        extra = {} if if_match is None else {"If-Match": f'"{if_match}"'}
        return await self._write(
            "POST",
            f"/api/v3/clients/{client_id}",
            _client,
            json=changes,
            key=idempotency_key,
            respond_async=respond_async,
            extra=extra,
        )

    async def delete_client(
        self, client_id: int, *, idempotency_key: str | None = None
    ) -> m.Committed[m.Deleted]:
        """409 (Conflict) while the balance or the deposit is not zero."""
        return await self._write(
            "DELETE", f"/api/v3/clients/{client_id}", _deleted, key=idempotency_key
        )

    async def set_archived(
        self,
        client_id: int,
        archived: bool | None = None,
        *,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.ClientBody]:
        """Archive (True), unarchive (False) or toggle (None)."""
        body = {} if archived is None else {"archived": archived}
        return await self._write(
            "POST",
            f"/api/v3/clients/{client_id}/archive",
            _client,
            json=body,
            key=idempotency_key,
            respond_async=respond_async,
        )

    async def post_transaction(
        self,
        client_id: int,
        entry_type: m.EntryType,
        amount: m.Amount,
        *,
        date: dt.date | str | None = None,
        description: str | None = None,
        reference: str | None = None,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.TransactionBody]:
        body = m.posting_body(entry_type, amount, date)
        body.update(m.given(description=description, reference=reference))
        return await self._write(
            "POST",
            f"/api/v3/clients/{client_id}/transactions",
            _transaction,
            json=body,
            key=idempotency_key,
            respond_async=respond_async,
        )

    async def post_deposit(
        self,
        client_id: int,
        entry_type: m.EntryType,
        amount: m.Amount,
        *,
        date: dt.date | str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.DepositBody]:
        """debit = money received, credit = deposit used (never below zero: 422)."""
        body = m.posting_body(entry_type, amount, date)
        body.update(m.given(description=description))
        return await self._write(
            "POST",
            f"/api/v3/clients/{client_id}/deposits",
            _deposit,
            json=body,
            key=idempotency_key,
            respond_async=respond_async,
        )

    async def reverse_transaction(
        self,
        client_id: int,
        transaction_id: int,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.TransactionBody]:
        path = f"/api/v3/clients/{client_id}/transactions/{transaction_id}/reverse"
        return await self._write(
            "POST",
            path,
            _transaction,
            json=m.given(reason=reason),
            key=idempotency_key,
            respond_async=respond_async,
        )

    async def reverse_deposit(
        self,
        client_id: int,
        deposit_id: int,
        *,
        reason: str | None = None,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.DepositBody]:
        path = f"/api/v3/clients/{client_id}/deposits/{deposit_id}/reverse"
        return await self._write(
            "POST",
            path,
            _deposit,
            json=m.given(reason=reason),
            key=idempotency_key,
            respond_async=respond_async,
        )

    async def create_category(
        self,
        name: str,
        *,
        description: str | None = None,
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.CategoryBody]:
        return await self._write(
            "POST",
            "/api/v3/clients/category",
            _category,
            json=m.given(name=name, description=description),
            key=idempotency_key,
            respond_async=respond_async,
        )

    async def import_clients(
        self,
        workbook: bytes,
        *,
        category_id: int | None = None,
        allow_duplicate: bool = False,
        filename: str = "customers.xlsx",
        idempotency_key: str | None = None,
        respond_async: bool = False,
    ) -> m.Committed[m.ImportResult]:
        """An .xlsx; a file already imported raises Conflict with its `import_id`."""

        def form() -> aiohttp.FormData:  # a FormData is spent once sent: one a try
            data = aiohttp.FormData()
            data.add_field(
                "customers", workbook, filename=filename, content_type=XLSX_TYPE
            )
            if category_id is not None:
                data.add_field("category_id", str(category_id))
            if allow_duplicate:
                data.add_field("allow_duplicate", "true")
            return data

        return await self._write(
            "POST",
            "/api/v3/clients/import",
            _import,
            form=form,
            key=idempotency_key,
            respond_async=respond_async,
        )

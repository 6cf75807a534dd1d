"""LedgerClient's commands: every write route, each with an Idempotency-Key.

Each returns `Committed[body]`: 201/200 once the read models show the write, 202 when
it is committed but not yet visible (`respond_async=True`, or the service's wait ran
out). Amounts are Decimal, int or str; a float raises TypeError before anything is
sent. Every command but delete_client takes the keyword arguments of `WriteOptions`
(`idempotency_key`, `respond_async`).
"""

from __future__ import annotations

import datetime as dt
from typing import Unpack

import aiohttp

from shared.client import models as m
from shared.client.session import ApiSession, WriteOptions

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Commands(ApiSession):
    async def create_client(
        self, client: m.NewClient, **options: Unpack[WriteOptions]
    ) -> m.Committed[m.ClientBody]:
        path = "/api/v3/clients"
        return await self._write("POST", path, m.ClientBody, json=client, **options)

    async def update_client(
        self,
        client_id: int,
        changes: m.ClientChanges,
        *,
        if_match: int | None = None,
        **options: Unpack[WriteOptions],
    ) -> m.Committed[m.ClientBody]:
        """412 (PreconditionFailed) when `if_match` is not the client's version."""
        extra = {} if if_match is None else {"If-Match": f'"{if_match}"'}
        path = f"/api/v3/clients/{client_id}"
        return await self._write(
            "POST", path, m.ClientBody, json=changes, extra=extra, **options
        )

    async def delete_client(
        self, client_id: int, *, idempotency_key: str | None = None
    ) -> m.Committed[m.Deleted]:
        """409 (Conflict) while the balance or the deposit is not zero."""
        path = f"/api/v3/clients/{client_id}"
        return await self._write(
            "DELETE", path, m.Deleted, idempotency_key=idempotency_key
        )

    async def set_archived(
        self,
        client_id: int,
        archived: bool | None = None,
        **options: Unpack[WriteOptions],
    ) -> m.Committed[m.ClientBody]:
        """Archive (True), unarchive (False) or toggle (None)."""
        body = {} if archived is None else {"archived": archived}
        path = f"/api/v3/clients/{client_id}/archive"
        return await self._write("POST", path, m.ClientBody, json=body, **options)

    async def post_transaction(
        self,
        client_id: int,
        entry_type: m.EntryType,
        amount: m.Amount,
        *,
        date: dt.date | str | None = None,
        description: str | None = None,
        reference: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> m.Committed[m.TransactionBody]:
        body = m.posting_body(entry_type, amount, date)
        body.update(m.given(description=description, reference=reference))
        path = f"/api/v3/clients/{client_id}/transactions"
        return await self._write("POST", path, m.TransactionBody, json=body, **options)

    async def post_deposit(
        self,
        client_id: int,
        entry_type: m.EntryType,
        amount: m.Amount,
        *,
        date: dt.date | str | None = None,
        description: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> m.Committed[m.DepositBody]:
        """debit = money received, credit = deposit used (never below zero: 422)."""
        body = m.posting_body(entry_type, amount, date)
        body.update(m.given(description=description))
        path = f"/api/v3/clients/{client_id}/deposits"
        return await self._write("POST", path, m.DepositBody, json=body, **options)

    async def reverse_transaction(
        self,
        client_id: int,
        transaction_id: int,
        *,
        reason: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> m.Committed[m.TransactionBody]:
        path = f"/api/v3/clients/{client_id}/transactions/{transaction_id}/reverse"
        body = m.given(reason=reason)
        return await self._write("POST", path, m.TransactionBody, json=body, **options)

    async def reverse_deposit(
        self,
        client_id: int,
        deposit_id: int,
        *,
        reason: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> m.Committed[m.DepositBody]:
        path = f"/api/v3/clients/{client_id}/deposits/{deposit_id}/reverse"
        body = m.given(reason=reason)
        return await self._write("POST", path, m.DepositBody, json=body, **options)

    async def create_category(
        self,
        name: str,
        *,
        description: str | None = None,
        **options: Unpack[WriteOptions],
    ) -> m.Committed[m.CategoryBody]:
        body = m.given(name=name, description=description)
        path = "/api/v3/clients/category"
        return await self._write("POST", path, m.CategoryBody, json=body, **options)

    async def import_clients(
        self,
        workbook: bytes,
        *,
        category_id: int | None = None,
        allow_duplicate: bool = False,
        filename: str = "customers.xlsx",
        **options: Unpack[WriteOptions],
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

        path = "/api/v3/clients/import"
        return await self._write("POST", path, m.ImportResult, form=form, **options)

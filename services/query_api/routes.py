"""The query routes: read models rendered in the seed's shapes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from services.http.edge import (
    CLOCK,
    EXPORT_ROUTE,
    POOL,
    SETTINGS,
    business_of,
    json_response,
    path_id,
)
from services.http.fair_use import client_address, fair_use_of
from services.http.fold_processes import in_fold_process
from services.http.replica_reads import ReadTarget, on_replica
from services.query_api import as_of, client_list, excel_export, queries
from services.query_api import query_parameters as parameters
from services.query_api.read_positions import (
    READ_POSITION,
    answer,
    min_position,
    wait_min_position,
)
from shared.errors import NotFound
from shared.money import to_number
from shared.response_bodies import (
    CategoryBody,
    DepositBody,
    StatementBody,
    SummaryBody,
    TransactionBody,
    client_body,
    client_fields,
    client_figures,
    timestamp,
)

routes = web.RouteTableDef()
Period = tuple[dt.date | None, dt.date | None]


@routes.get("/api/v3/clients")
async def list_clients(request: web.Request) -> web.Response:
    business = business_of(request)
    where = parameters.client_filter(request)

    async def read(target: ReadTarget) -> tuple[list[asyncpg.Record], int]:
        await min_position(request, target)
        return await client_list.list_clients(target.pool, business.business_id, where)

    rows, total = await on_replica(request, read)
    body = [client_body(queries.figures(row, business.owner_id)) for row in rows]
    headers = {}
    if where.limit is not None:
        headers = {
            "X-Total-Count": str(total),
            "Link": parameters.link_header(request, where, total),
        }
    return answer(request, body, headers=headers)


@routes.get("/api/v3/clients/summary")
async def summary(request: web.Request) -> web.Response:
    business = business_of(request)
    category_id = parameters.optional_int(request, "category_id")
    moment = as_of.parse_as_of(request.query.get("as_of", ""))
    if moment is not None:
        return await _summary_as_of(request, category_id, moment)

    async def read(target: ReadTarget) -> asyncpg.Record:
        await min_position(request, target)
        return await queries.summary(target.pool, business.business_id, category_id)

    return answer(request, _summary_body(await on_replica(request, read)))


async def _summary_as_of(
    request: web.Request, category_id: int | None, moment: dt.datetime
) -> web.Response:
    """The summary from the events recorded up to `moment` (query_api/as_of)."""
    business_id = business_of(request).business_id
    async with fair_use_of(request).expensive_work(business_id):
        figures = await on_replica(
            request,
            lambda target: in_fold_process(
                request,
                as_of.summary_at,
                business_id,
                category_id,
                moment,
                dsn=target.database_url,
            ),
        )
    body = _summary_body(msgspec.structs.asdict(figures))
    return json_response(body, headers={"X-Ledger-Position": str(figures.position)})


def _summary_body(figures: Mapping[str, Any]) -> SummaryBody:
    """The summary from its figures in minor units, read-model row or folded."""
    return SummaryBody(
        total_deposits=to_number(int(figures["total_deposits"])),
        customer_count=figures["customer_count"],
        archived_customers=figures["archived_customers"],
        unarchived_customers=figures["unarchived_customers"],
        total_balance=to_number(int(figures["total_balance"])),
    )


@routes.get("/api/v3/clients/categories")
@routes.get("/api/v3/clients/clients/categories")
async def categories(request: web.Request) -> web.Response:
    business = business_of(request)

    async def read(target: ReadTarget) -> list[asyncpg.Record]:
        await min_position(request, target)
        return await queries.categories(target.pool, business.business_id)

    rows = await on_replica(request, read)
    body = [
        CategoryBody(
            id=row["category_id"],
            business_id=row["business_id"],
            name=row["name"],
            description=row["description"],
            created_at=timestamp(row["created_at"]),
            updated_at=timestamp(row["updated_at"]),
            archived=False,
            customer_count=row["customer_count"],
        )
        for row in rows
    ]
    return answer(request, body)


# No API key: the auth middleware lets this route through, and the bid in its path is
# the capability. (Client ids are digits in their routes, so `clients-print` is never
# taken for one.)
@routes.get(EXPORT_ROUTE)
async def export_clients(request: web.Request) -> web.StreamResponse:
    pool, fair_use = request.app[POOL], fair_use_of(request)
    # An unknown bid counts as a failed authentication of the address, as a bad key
    # does: guessing bids is refused (429) before it costs a lookup.
    fair_use.refuse_failing_address(client_address(request))
    business_id = await queries.business_for_bid(pool, request.match_info["bid"])
    if business_id is None:
        await fair_use.note_failure(client_address(request))
        raise NotFound("Business not found")
    category_id = parameters.optional_int(request, "category_id")
    await fair_use.admit_export(business_id)
    path = excel_export.temporary_path()
    try:
        # The slot covers the expensive part only: a client that reads the workbook
        # slowly, or never, must not hold its business's imports, audits and as_of.
        async with fair_use.expensive_work(business_id):

            async def read(target: ReadTarget) -> None:
                await min_position(request, target)
                await excel_export.write_workbook(
                    target.pool, business_id, category_id, path
                )

            await on_replica(request, read)
        filename = f"clients-{request.app[CLOCK].today().isoformat()}.xlsx"
        timeout_s = request.app[SETTINGS].http_send_timeout_s
        return await excel_export.send_file(request, path, filename, timeout_s)
    finally:
        path.unlink(missing_ok=True)


async def _client_row(request: web.Request, target: ReadTarget) -> asyncpg.Record:
    business = business_of(request)
    client_id = path_id(request)
    await wait_min_position(request, target)
    row = await queries.get_client(target.pool, business.business_id, client_id)
    if row is None:
        raise NotFound(f"Client {client_id} not found")
    # Read with the row, before any data read after it (a statement's lines).
    request[READ_POSITION] = row["read_position"] or 0
    return row


@routes.get(r"/api/v3/clients/{id:[0-9]+}")
async def get_client(request: web.Request) -> web.Response:
    moment = as_of.parse_as_of(request.query.get("as_of", ""))
    if moment is not None:
        return await _client_as_of(request, moment)
    row = await on_replica(request, lambda target: _client_row(request, target))
    body = client_body(queries.figures(row, business_of(request).owner_id))
    return answer(request, body, headers={"ETag": f'"{row["version"]}"'})


async def _client_as_of(request: web.Request, moment: dt.datetime) -> web.Response:
    """The client from its events recorded up to `moment` (services/query_api/as_of);
    404 if it did not exist yet or was deleted by then."""
    business = business_of(request)
    client_id = path_id(request)
    async with fair_use_of(request).expensive_work(business.business_id):
        state, category, position = await on_replica(
            request,
            lambda target: in_fold_process(
                request,
                as_of.client_at,
                business.business_id,
                client_id,
                moment,
                dsn=target.database_url,
            ),
        )
    if state is None:
        raise NotFound(f"Client {client_id} not found")
    body = client_body(client_figures(state, category, business.owner_id))
    return json_response(body, headers={"X-Ledger-Position": str(position)})


@routes.get(r"/api/v3/clients/{id:[0-9]+}/transactions")
async def statement(request: web.Request) -> web.Response:
    period = parameters.period(request)
    row, (lines, opening) = await on_replica(
        request,
        lambda target: _client_lines(request, target, "rm_transactions", period),
    )
    business = business_of(request)
    transactions = [
        TransactionBody(
            **_entry_fields(line, "transaction_id"),
            reference=line["reference"],
            balance_after=to_number(int(line["running_minor"])),
        )
        for line in lines
    ]
    closing = int(lines[-1]["running_minor"]) if lines else opening
    body = StatementBody(
        transactions=transactions,
        opening_balance=to_number(opening),
        closing_balance=to_number(closing),
        transactions_count=len(transactions),
        **client_fields(queries.figures(row, business.owner_id)),  # type: ignore[arg-type]
    )
    return answer(request, body)


@routes.get(r"/api/v3/clients/{id:[0-9]+}/deposits")
async def deposits(request: web.Request) -> web.Response:
    period = parameters.period(request)
    _, (lines, _) = await on_replica(
        request, lambda target: _client_lines(request, target, "rm_deposits", period)
    )
    body = [
        DepositBody(
            **_entry_fields(line, "deposit_id"),
            deposit_after=to_number(int(line["running_minor"])),
        )
        for line in lines
    ]
    return answer(request, body)


async def _client_lines(
    request: web.Request, target: ReadTarget, table: str, period: Period
) -> tuple[asyncpg.Record, tuple[list[asyncpg.Record], int]]:
    """The client's row, then its lines of `table` in the period (one target)."""
    row = await _client_row(request, target)
    lines = await queries.lines(
        target.pool, table, business_of(request).business_id, row["client_id"], period
    )
    return row, lines


def _entry_fields(line: asyncpg.Record, id_column: str) -> dict[str, Any]:
    """The fields a statement's transaction and a deposit posting share, from a line
    of rm_transactions or rm_deposits."""
    return {
        "id": line[id_column],
        "client_id": line["client_id"],
        "type": line["entry_type"],
        "amount": to_number(line["amount_minor"]),
        "date": line["date"],
        "description": line["description"],
        "created_at": timestamp(line["created_at"]),
        "reversed": line["reversed"],
        "reversal_of": line["reversal_of"],
    }

"""The query routes: read models rendered in the seed's shapes."""

from __future__ import annotations

import datetime as dt
import re

import asyncpg
from aiohttp import web

from services.http.edge import (
    CLOCK,
    EXPORT_ROUTE,
    POOL,
    SETTINGS,
    business_of,
    json_response,
    path_id,
    whole_number,
)
from services.http.fair_use import client_address, fair_use_of
from services.http.fold_processes import in_fold_process
from services.http.projection_wait import WAITER
from services.query_api import as_of, excel_export, queries
from shared.errors import NotFound, NotYetVisible, ValidationFailed
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
READ_POSITION = web.RequestKey("read_position", int)
PER_PAGE_MAX = 1000
PER_PAGE_DEFAULT = 100
# An OFFSET beyond this cannot be a bigint (and matches no row anyway).
OFFSET_MAX = 2**62


def _optional_int(request: web.Request, name: str) -> int | None:
    text = request.query.get(name, "").strip()
    if text == "":
        return None
    number = whole_number(text)
    if number is None:
        raise ValidationFailed(
            {name: [f"The {name.replace('_', ' ')} must be an integer."]}
        )
    return number


def _optional_bool(request: web.Request, name: str) -> bool | None:
    text = request.query.get(name, "").strip().lower()
    if text == "":
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationFailed({name: [f"The {name} field must be true or false."]})


def _optional_date(request: web.Request, name: str) -> dt.date | None:
    text = request.query.get(name, "").strip()
    if text == "":
        return None
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            {name: [f"The {name} must be a date in the format YYYY-MM-DD."]}
        ) from None


def _period(request: web.Request) -> tuple[dt.date | None, dt.date | None]:
    errors: dict[str, list[str]] = {}
    dates: list[dt.date | None] = []
    for name in ("from", "to"):
        try:
            dates.append(_optional_date(request, name))
        except ValidationFailed as error:
            errors.update(error.errors)
    if errors:
        raise ValidationFailed(errors)
    start, end = dates
    if start is not None and end is not None and start > end:
        raise ValidationFailed(
            {"to": ["The to date must be on or after the from date."]}
        )
    return start, end


async def _min_position(request: web.Request) -> None:
    """Honour X-Ledger-Min-Position (wait until the read models have reached it), then
    note the position the read models are at, which the answer carries."""
    header = request.headers.get("X-Ledger-Min-Position")
    if header is not None:
        position = whole_number(header.strip())
        if position is None:
            raise ValidationFailed(
                {
                    "X-Ledger-Min-Position": [
                        "The X-Ledger-Min-Position must be an integer."
                    ]
                }
            )
        timeout = request.app[SETTINGS].read_your_writes_timeout_s
        if not await request.app[WAITER].wait_for_position(position, timeout):
            raise NotYetVisible("The read models have not reached that position yet")
    # Read before the data: the body then reflects at least this position.
    request[READ_POSITION] = await queries.read_position(request.app[POOL])


def _answer(
    request: web.Request, body: object, headers: dict[str, str] | None = None
) -> web.Response:
    """A query's JSON answer, with the position its read models had reached."""
    position = {"X-Ledger-Position": str(request[READ_POSITION])}
    return json_response(body, headers={**position, **(headers or {})})


def _page(request: web.Request) -> queries.ClientFilter:
    page, per_page = _optional_int(request, "page"), _optional_int(request, "per_page")
    category_id = _optional_int(request, "category_id")
    archived = _optional_bool(request, "archived")
    if page is None and per_page is None:
        return queries.ClientFilter(category_id=category_id, archived=archived)
    # Explicit None checks: `page or 1` turned page=0 into page 1 and per_page=0
    # into 100 rows instead of refusing them.
    page = 1 if page is None else page
    per_page = PER_PAGE_DEFAULT if per_page is None else per_page
    errors: dict[str, list[str]] = {}
    if page < 1 or (page - 1) * per_page > OFFSET_MAX:
        errors["page"] = ["The page must be at least 1 and within range."]
    if not 1 <= per_page <= PER_PAGE_MAX:
        errors["per_page"] = ["The per page must be between 1 and 1000."]
    if errors:
        raise ValidationFailed(errors)
    return queries.ClientFilter(
        category_id=category_id,
        archived=archived,
        limit=per_page,
        offset=(page - 1) * per_page,
    )


def _link_header(request: web.Request, where: queries.ClientFilter, total: int) -> str:
    assert where.limit is not None
    page = where.offset // where.limit + 1
    last = max(1, -(-total // where.limit))
    links = []
    for rel, number in (
        ("first", 1),
        ("prev", page - 1),
        ("next", page + 1),
        ("last", last),
    ):
        if 1 <= number <= last:
            url = request.rel_url.update_query(page=number, per_page=where.limit)
            links.append(f'<{url}>; rel="{rel}"')
    return ", ".join(links)


@routes.get("/api/v3/clients")
async def list_clients(request: web.Request) -> web.Response:
    business = business_of(request)
    where = _page(request)
    await _min_position(request)
    rows, total = await queries.list_clients(
        request.app[POOL], business.business_id, where
    )
    body = [client_body(queries.figures(row, business.owner_id)) for row in rows]
    headers = {}
    if where.limit is not None:
        headers = {
            "X-Total-Count": str(total),
            "Link": _link_header(request, where, total),
        }
    return _answer(request, body, headers=headers)


@routes.get("/api/v3/clients/summary")
async def summary(request: web.Request) -> web.Response:
    business = business_of(request)
    category_id = _optional_int(request, "category_id")
    moment = as_of.parse_as_of(request.query.get("as_of", ""))
    if moment is not None:
        return await _summary_as_of(request, category_id, moment)
    await _min_position(request)
    row = await queries.summary(request.app[POOL], business.business_id, category_id)
    body = SummaryBody(
        total_deposits=to_number(int(row["total_deposits"])),
        customer_count=row["customer_count"],
        archived_customers=row["archived_customers"],
        unarchived_customers=row["unarchived_customers"],
        total_balance=to_number(int(row["total_balance"])),
    )
    return _answer(request, body)


async def _summary_as_of(
    request: web.Request, category_id: int | None, moment: dt.datetime
) -> web.Response:
    """The summary from the events recorded up to `moment` (query_api/as_of)."""
    business_id = business_of(request).business_id
    with fair_use_of(request).expensive_work(business_id):
        figures = await in_fold_process(
            request, as_of.summary_at, business_id, category_id, moment
        )
    body = SummaryBody(
        total_deposits=to_number(figures.total_deposits),
        customer_count=figures.customer_count,
        archived_customers=figures.archived_customers,
        unarchived_customers=figures.unarchived_customers,
        total_balance=to_number(figures.total_balance),
    )
    return json_response(body, headers={"X-Ledger-Position": str(figures.position)})


@routes.get("/api/v3/clients/categories")
@routes.get("/api/v3/clients/clients/categories")
async def categories(request: web.Request) -> web.Response:
    business = business_of(request)
    await _min_position(request)
    rows = await queries.categories(request.app[POOL], business.business_id)
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
    return _answer(request, body)


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
        fair_use.note_failure(client_address(request))
        raise NotFound("Business not found")
    category_id = _optional_int(request, "category_id")
    fair_use.admit_export(business_id)
    path = excel_export.temporary_path()
    try:
        # The slot covers the expensive part only: a client that reads the workbook
        # slowly, or never, must not hold its business's imports, audits and as_of.
        with fair_use.expensive_work(business_id):
            await _min_position(request)
            await excel_export.write_workbook(pool, business_id, category_id, path)
        filename = f"clients-{request.app[CLOCK].today().isoformat()}.xlsx"
        timeout_s = request.app[SETTINGS].http_send_timeout_s
        return await excel_export.send_file(request, path, filename, timeout_s)
    finally:
        path.unlink(missing_ok=True)


async def _client_row(request: web.Request) -> asyncpg.Record:
    business = business_of(request)
    client_id = path_id(request)
    await _min_position(request)
    row = await queries.get_client(request.app[POOL], business.business_id, client_id)
    if row is None:
        raise NotFound(f"Client {client_id} not found")
    return row


@routes.get(r"/api/v3/clients/{id:[0-9]+}")
async def get_client(request: web.Request) -> web.Response:
    moment = as_of.parse_as_of(request.query.get("as_of", ""))
    if moment is not None:
        return await _client_as_of(request, moment)
    row = await _client_row(request)
    body = client_body(queries.figures(row, business_of(request).owner_id))
    return _answer(request, body, headers={"ETag": f'"{row["version"]}"'})


async def _client_as_of(request: web.Request, moment: dt.datetime) -> web.Response:
    """The client from its events recorded up to `moment` (services/query_api/as_of);
    404 if it did not exist yet or was deleted by then."""
    business = business_of(request)
    client_id = path_id(request)
    with fair_use_of(request).expensive_work(business.business_id):
        state, category, position = await in_fold_process(
            request, as_of.client_at, business.business_id, client_id, moment
        )
    if state is None:
        raise NotFound(f"Client {client_id} not found")
    body = client_body(client_figures(state, category, business.owner_id))
    return json_response(body, headers={"X-Ledger-Position": str(position)})


@routes.get(r"/api/v3/clients/{id:[0-9]+}/transactions")
async def statement(request: web.Request) -> web.Response:
    period = _period(request)
    row = await _client_row(request)
    business = business_of(request)
    lines, opening = await queries.lines(
        request.app[POOL],
        "rm_transactions",
        business.business_id,
        row["client_id"],
        period,
    )
    transactions = [
        TransactionBody(
            id=line["transaction_id"],
            client_id=line["client_id"],
            type=line["entry_type"],
            amount=to_number(line["amount_minor"]),
            date=line["date"],
            description=line["description"],
            reference=line["reference"],
            created_at=timestamp(line["created_at"]),
            balance_after=to_number(int(line["running_minor"])),
            reversed=line["reversed"],
            reversal_of=line["reversal_of"],
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
    return _answer(request, body)


@routes.get(r"/api/v3/clients/{id:[0-9]+}/deposits")
async def deposits(request: web.Request) -> web.Response:
    period = _period(request)
    row = await _client_row(request)
    lines, _ = await queries.lines(
        request.app[POOL],
        "rm_deposits",
        business_of(request).business_id,
        row["client_id"],
        period,
    )
    body = [
        DepositBody(
            id=line["deposit_id"],
            client_id=line["client_id"],
            type=line["entry_type"],
            amount=to_number(line["amount_minor"]),
            date=line["date"],
            description=line["description"],
            created_at=timestamp(line["created_at"]),
            deposit_after=to_number(int(line["running_minor"])),
            reversed=line["reversed"],
            reversal_of=line["reversal_of"],
        )
        for line in lines
    ]
    return _answer(request, body)

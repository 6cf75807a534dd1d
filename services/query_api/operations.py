"""The query routes (routes.py, history.py, feed.py) as the OpenAPI document
describes them.

The feed and the history send each envelope as its RabbitMQ message's bytes
(`msgspec.Raw` in code): EventsPage and EventHistory describe those answers with
Envelope, field for field as feed.EventsBody has them.
"""

from __future__ import annotations

import msgspec

from services.api_docs.operation import (
    POSITION_HEADER,
    Operation,
    answer,
    content,
    list_of,
    public_document,
    public_get,
    ref,
)
from services.api_docs.parameters import CLIENT_ID, WHOLE, header, path_text, query
from services.http.edge import EXPORT_ROUTE
from services.query_api.excel_export import CONTENT_TYPE as XLSX
from services.query_api.feed import LIMIT_DEFAULT, LIMIT_MAX
from services.query_api.query_parameters import (
    PER_PAGE_DEFAULT,
    PER_PAGE_MAX,
    SEARCH_LENGTH_MAX,
)
from shared import aging
from shared import events as e
from shared import response_bodies as answers


class EventsPage(msgspec.Struct, kw_only=True):
    """The feed's answer (services/query_api/feed.EventsBody: each envelope is sent as
    its RabbitMQ message's bytes, `msgspec.Raw` in code, an Envelope on the wire)."""

    data: list[e.Envelope]
    next_after: int


class EventHistory(msgspec.Struct, kw_only=True):
    """A client's history: the same envelopes, without a cursor."""

    data: list[e.Envelope]


BODIES = (EventsPage, EventHistory)
MIN_POSITION = header(
    "X-Ledger-Min-Position",
    {"type": "string", "pattern": "^[0-9]{1,18}$"},
    "Wait (up to a few seconds, else 503) until the read models reach this position.",
)
_CATEGORY_ID = query("category_id", WHOLE, "Only this category's clients.")
_AS_OF = query(
    "as_of",
    {
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
        ]
    },
    "As recorded at this moment (RFC 3339 with an offset, or a date: its end, UTC), "
    "from the event store.",
)
_PERIOD = (
    query("from", {"type": "string", "format": "date"}, "First date (YYYY-MM-DD)."),
    query("to", {"type": "string", "format": "date"}, "Last date (YYYY-MM-DD)."),
)
_PAGE = (
    _CATEGORY_ID,
    query(
        "archived",
        {"enum": ["true", "false", "1", "0", "yes", "no"]},
        "Only archived (or unarchived) clients; any letter case.",
    ),
    query(
        "search",
        {
            "type": "string",
            "maxLength": SEARCH_LENGTH_MAX,
            "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
        },
        "Only clients whose first, last or business name, phone number, business "
        "phone or business e-mail contains this text, ignoring case and accents "
        "(`jose` finds `José`); phone numbers also match without spaces or "
        "punctuation and with or without `+233` or a leading `0`. No control "
        "characters.",
    ),
    query("page", {**WHOLE, "minimum": 1}, "Page number (from 1)."),
    query(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": PER_PAGE_MAX},
        f"Clients per page (default {PER_PAGE_DEFAULT}).",
    ),
)
_AGING = (
    query(
        "as_of",
        {"type": "string", "format": "date"},
        "The report's date (YYYY-MM-DD, default today UTC): postings dated up to it.",
    ),
    query(
        "terms_days",
        {**WHOLE, "maximum": aging.TERMS_DAYS_MAX},
        "Payment terms: a debit is due this many days after its date (default 0).",
    ),
    _CATEGORY_ID,
)
_PAGING_HEADERS: dict[str, object] = {
    "X-Total-Count": {
        "description": "With page/per_page: the number of matching clients.",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": "With page/per_page: first, prev, next, last pages.",
        "schema": {"type": "string"},
    },
}
_ETAG: dict[str, object] = {
    "ETag": {"description": "The client's version.", "schema": {"type": "string"}}
}
_CLIENTS = "/api/v3/clients"
_CLIENT = _CLIENTS + "/{id}"


def _query(
    path: str,
    operation_id: str,
    summary: str,
    schema: dict[str, object],
    parameters: tuple[dict[str, object], ...] = (CLIENT_ID,),
    errors: tuple[int, ...] = (404,),
    headers: dict[str, object] | None = None,
) -> Operation:
    """A read-model query: honours X-Ledger-Min-Position (503 when not reached)."""
    position = {**POSITION_HEADER, **(headers or {})}
    return Operation(
        "get",
        path,
        operation_id,
        summary,
        "queries",
        [answer(schema, 200, position)],
        errors=tuple(sorted({422, 503, *errors})),
        parameters=[*parameters, MIN_POSITION],
    )


_CATEGORIES = _query(
    _CLIENTS + "/categories",
    "listCategories",
    "The categories, with customer_count",
    list_of(answers.CategoryBody),
    parameters=(),
    errors=(),
)
OPERATIONS = [
    _query(
        _CLIENTS,
        "listClients",
        "The clients, by id",
        list_of(answers.ClientBody),
        parameters=_PAGE,
        errors=(),
        headers=_PAGING_HEADERS,
    ),
    _query(
        _CLIENTS + "/summary",
        "getSummary",
        "Totals over the clients (exact sums)",
        ref(answers.SummaryBody),
        parameters=(_CATEGORY_ID, _AS_OF),
        errors=(),
    ),
    _query(
        _CLIENT,
        "getClient",
        "One client",
        ref(answers.ClientBody),
        parameters=(CLIENT_ID, _AS_OF),
        headers=_ETAG,
    ),
    _query(
        _CLIENT + "/transactions",
        "getStatement",
        "The statement: the client with its transactions and running balance",
        ref(answers.StatementBody),
        parameters=(CLIENT_ID, *_PERIOD),
    ),
    _query(
        _CLIENT + "/deposits",
        "listDeposits",
        "The deposit postings, with running deposit_after",
        list_of(answers.DepositBody),
        parameters=(CLIENT_ID, *_PERIOD),
    ),
    _query(
        _CLIENTS + "/aging",
        "getAgingReport",
        "Aged receivables: open debits first in, first out, by days past due",
        ref(answers.AgingBody),
        parameters=_AGING,
        errors=(429,),
    ),
    Operation(
        "get",
        _CLIENTS + "/aging.xlsx",
        "getAgingWorkbook",
        "The aged receivables report as an .xlsx download",
        "queries",
        [content("The workbook", XLSX)],
        errors=(422, 429, 503),
        parameters=[*_AGING, MIN_POSITION],
    ),
    _CATEGORIES,
    msgspec.structs.replace(
        _CATEGORIES,
        path=_CLIENTS + "/clients/categories",
        operation_id="listCategoriesAlias",
        summary="The categories (the seed's second path)",
    ),
    public_get(
        "queries",
        EXPORT_ROUTE,
        "exportClients",
        "The clients as an .xlsx download (no key: the bid is the key)",
        content("The workbook", XLSX),
        parameters=(
            path_text("bid", "The business's bid."),
            _CATEGORY_ID,
            MIN_POSITION,
        ),
        errors=(404, 422, 429, 503),
    ),
    Operation(
        method="get",
        path=_CLIENT + "/events",
        operation_id="getClientEvents",
        summary="The client's whole history from the event store, oldest first",
        tag="events",
        parameters=[CLIENT_ID],
        responses=[answer(ref(EventHistory))],
        errors=(404, 503),
    ),
    Operation(
        method="get",
        path="/api/v3/events",
        operation_id="listEvents",
        summary="The business's events in publication order",
        tag="events",
        parameters=[
            query(
                "after", WHOLE, "0, or the position of one of the business's events."
            ),
            query(
                "limit",
                {**WHOLE, "minimum": 1},
                f"At most this many (default {LIMIT_DEFAULT}, capped at {LIMIT_MAX}).",
            ),
        ],
        responses=[answer(ref(EventsPage))],
        errors=(422, 503),
    ),
    public_document("/api/v3/asyncapi.json", "asyncapi", "The AsyncAPI document"),
]

"""The OpenAPI 3.1 document of the HTTP API, generated from the msgspec schemas.

Every body comes from code: responses from the structs the handlers encode
(shared.response_bodies, services.http.edge's error bodies, services.http.health, the
import, feed and audit structs), requests from the structs
services/command_api/request_bodies.py validates with, all through
`msgspec.json.schema_components`.
What is written here is only the routes' table: method, path, parameters, which body
each status answers. A test checks that table against the routes the app registers,
both ways, so a route cannot go undocumented; another checks the committed copy
(`shared/openapi.json`) against a fresh generation: regenerate it with `make openapi`
(`python -m services.api_docs.openapi > shared/openapi.json`).

Money is a JSON number on the wire (the encoders use `decimal_format="number"`), so
the `Decimal` schema msgspec writes (a string of format `decimal`) is replaced by
`{"type": "number"}`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec

import shared
from services.audit.report import Report
from services.command_api import request_bodies
from services.command_api.import_routes import DuplicateImportBody, ImportBody
from services.http.edge import EXPORT_ROUTE, MessageBody, ValidationBody
from services.http.health import HealthBody, ReadyBody
from services.query_api.feed import LIMIT_DEFAULT, LIMIT_MAX
from services.query_api.import_status import ImportStatus
from shared import events as e
from shared import response_bodies
from shared.schema_text import clean_descriptions, published

COMMITTED_PATH = Path(shared.__file__).with_name("openapi.json")
_SCHEMAS = "#/components/schemas/{name}"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_DECIMAL = {"type": "string", "format": "decimal"}
_DESCRIPTION = """\
The Customers API v3: clients, their transactions and deposits, categories, \
spreadsheet import and export, and the event history behind them. Every route but \
the public ones (health, these documents, the export by `bid`) needs \
`Authorization: Bearer <API key>` (a key belongs to one business). Refusals are \
Laravel-shaped: 422 `{"message", "errors": {field: [...]}}`, any other `{"message"}`; \
429 (a fair-use limit) and 503 carry `Retry-After`. Amounts are exact JSON numbers \
(requests may also send strings such as "1,234.50"). Commands answer once the read \
models show them, or 202 (`Prefer: respond-async`, or when they take longer); \
`X-Ledger-Position` on a command's answer, sent back as `X-Ledger-Min-Position`, \
makes a query wait for it. Events reach subscribers over RabbitMQ: see \
`/api/v3/asyncapi.json`."""


class EventsPage(msgspec.Struct, kw_only=True):
    """The feed's answer (services/query_api/feed.EventsBody: each envelope is sent as
    its RabbitMQ message's bytes, `msgspec.Raw` in code, an Envelope on the wire)."""

    data: list[e.Envelope]
    next_after: int


class EventHistory(msgspec.Struct, kw_only=True):
    """A client's history: the same envelopes, without a cursor."""

    data: list[e.Envelope]


_BODIES: list[type] = [
    response_bodies.ClientBody,
    response_bodies.StatementBody,
    response_bodies.CategoryBody,
    response_bodies.SummaryBody,
    response_bodies.TransactionBody,
    response_bodies.DepositBody,
    response_bodies.DeletedBody,
    ImportBody,
    DuplicateImportBody,
    ImportStatus,
    Report,
    EventsPage,
    EventHistory,
    HealthBody,
    ReadyBody,
    MessageBody,
    ValidationBody,
    request_bodies.NewClient,
    request_bodies.ClientFields,
    request_bodies.CategoryInput,
    request_bodies.ArchiveInput,
    request_bodies.PostingInput,
    request_bodies.DepositInput,
    request_bodies.ReversalInput,
]

_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted: written, not yet visible to queries (same body)",
    400: "The body is malformed (not JSON, not a JSON object, not multipart)",
    401: "No API key, or an unknown one",
    404: "Not found (another business's, or a non-numeric id)",
    408: "The body did not arrive whole in time (LEDGER_HTTP_BODY_TIMEOUT_S)",
    409: "Conflict",
    412: "If-Match does not match the client's ETag",
    413: "The body is too large",
    415: "Wrong Content-Type",
    422: "Invalid fields, query parameters or headers",
    429: "A fair-use limit was reached (requests per key, failed authentications"
    " per address, expensive work per business, exports per bid); retry after"
    " Retry-After seconds",
    503: "Not available now; retry after Retry-After seconds",
}
_POSITION_HEADER: dict[str, object] = {
    "X-Ledger-Position": {
        "description": "The event store position the answer reflects.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
_RETRY_HEADER: dict[str, object] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string"},
    }
}


def _ref(struct: type) -> dict[str, object]:
    return {"$ref": _SCHEMAS.format(name=struct.__name__)}


def _json(schema: dict[str, object]) -> dict[str, object]:
    return {"application/json": {"schema": schema}}


def _error(status: int) -> dict[str, object]:
    body = ValidationBody if status == 422 else MessageBody
    response: dict[str, object] = {
        "description": _STATUS_TEXT[status],
        "content": _json(_ref(body)),
    }
    if status in (429, 503):
        response["headers"] = _RETRY_HEADER
    return response


def _ok(
    schema: dict[str, object],
    status: int = 200,
    headers: dict[str, object] | None = None,
    description: str | None = None,
) -> tuple[int, dict[str, object]]:
    response: dict[str, object] = {
        "description": description or _STATUS_TEXT[status],
        "content": _json(schema),
    }
    if headers:
        response["headers"] = headers
    return status, response


def _query(name: str, schema: dict[str, object], description: str) -> dict[str, object]:
    """A query parameter; every one reads empty (or blank) as absent."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": _types(schema), "anyOf": [schema, _BLANK]},
    }


def _types(schema: dict[str, object]) -> object:
    """The JSON type(s) a parameter's schema or blank allows (for readers that show a
    parameter's type only from its top-level `type`)."""
    alternatives = schema.get("anyOf", [schema])
    assert isinstance(alternatives, list)
    types = [
        alternative.get("type", "string")
        for alternative in alternatives
        if isinstance(alternative, dict)
    ]
    unique = list(dict.fromkeys([*types, "string"]))
    return unique[0] if len(unique) == 1 else unique


def _header(
    name: str, schema: dict[str, object], description: str
) -> dict[str, object]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _path(name: str, description: str) -> dict[str, object]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1},
    }


_BLANK = {"type": "string", "pattern": "^\\s*$"}
# Numbers the query parsers take: at most 18 digits.
_WHOLE = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
_ID = _path("id", "The client's id.")
_MIN_POSITION = _header(
    "X-Ledger-Min-Position",
    {"type": "string", "pattern": "^[0-9]{1,18}$"},
    "Wait (up to a few seconds, else 503) until the read models reach this position.",
)
_IDEMPOTENCY = _header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "A retry with the same key and request answers what the first one answered.",
)
_PREFER = _header(
    "Prefer",
    {"type": "string"},
    "`respond-async`: answer 202 right after the commit (other preferences are "
    "ignored).",
)
_CATEGORY_ID = _query("category_id", _WHOLE, "Only this category's clients.")
_AS_OF = _query(
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
_PERIOD = [
    _query("from", {"type": "string", "format": "date"}, "First date (YYYY-MM-DD)."),
    _query("to", {"type": "string", "format": "date"}, "Last date (YYYY-MM-DD)."),
]


class Operation(msgspec.Struct, kw_only=True, frozen=True):
    """One route of the table: what the document says about it."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: list[tuple[int, dict[str, object]]]
    errors: tuple[int, ...] = ()
    parameters: list[dict[str, object]] = []
    body: type | None = None
    form: bool = False
    public: bool = False
    description: str | None = None

    def rendered(self) -> dict[str, object]:
        responses: dict[str, object] = {
            str(status): response for status, response in self.responses
        }
        # Every keyed route may meet a fair-use limit (429) or a busy pool (503).
        keyed = () if self.public else (401, 429, 503)
        statuses = tuple(sorted({*self.errors, *keyed}))
        for status in sorted(statuses):
            responses[str(status)] = _error(status)
        operation: dict[str, object] = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": [self.tag],
        }
        if self.description:
            operation["description"] = self.description
        if self.parameters:
            operation["parameters"] = self.parameters
        if self.body is not None:
            # An empty body reads as `{}`: required only where a field is.
            fields = msgspec.structs.fields(self.body)
            operation["requestBody"] = {
                "required": any(field.required for field in fields),
                "content": _json(_ref(self.body)),
            }
        if self.form:
            operation["requestBody"] = _upload()
        operation["responses"] = dict(
            sorted(responses.items(), key=lambda item: int(item[0]))
        )
        if self.public:
            operation["security"] = []
        return operation


def _upload() -> dict[str, object]:
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["customers"],
                    "properties": {
                        "customers": {
                            "type": "string",
                            "contentMediaType": XLSX,
                            "description": "The .xlsx file (20 MiB at most, "
                            "counting every part of the form; at most 8 parts, "
                            "parts other than these three are read and dropped).",
                        },
                        "category_id": {
                            "type": "string",
                            "description": "One of the business's categories "
                            '(default "Uncategorised").',
                        },
                        "allow_duplicate": {
                            "type": "string",
                            "description": "`true`: import a file imported before.",
                        },
                    },
                }
            }
        },
    }


def _command(
    method: str,
    path: str,
    operation_id: str,
    summary: str,
    body: type | None,
    answer: type,
    status: int,
    errors: tuple[int, ...],
    parameters: list[dict[str, object]] | None = None,
) -> Operation:
    """A command: JSON body, answered once visible (or 202 with the same body)."""
    schema = _ref(answer)
    return Operation(
        method=method,
        path=path,
        operation_id=operation_id,
        summary=summary,
        tag="commands",
        body=body,
        parameters=[*(parameters or []), _IDEMPOTENCY, _PREFER],
        responses=[
            _ok(schema, status, _POSITION_HEADER),
            _ok(schema, 202, _POSITION_HEADER),
        ],
        errors=tuple(sorted({400, 408, 409, 413, 415, 422, 503, *errors})),
    )


def _query_route(
    path: str,
    operation_id: str,
    summary: str,
    schema: dict[str, object],
    parameters: list[dict[str, object]],
    errors: tuple[int, ...] = (),
    headers: dict[str, object] | None = None,
) -> Operation:
    """A read-model query: honours X-Ledger-Min-Position (503 when not reached)."""
    return Operation(
        method="get",
        path=path,
        operation_id=operation_id,
        summary=summary,
        tag="queries",
        parameters=[*parameters, _MIN_POSITION],
        responses=[_ok(schema, 200, {**_POSITION_HEADER, **(headers or {})})],
        errors=tuple(sorted({422, 503, *errors})),
    )


def _list_of(struct: type) -> dict[str, object]:
    return {"type": "array", "items": _ref(struct)}


def operations() -> list[Operation]:
    """Every route of the app, in the README's order."""
    clients = "/api/v3/clients"
    client = clients + "/{id}"
    page = [
        _CATEGORY_ID,
        _query(
            "archived",
            {"enum": ["true", "false", "1", "0", "yes", "no"]},
            "Only archived (or unarchived) clients; any letter case.",
        ),
        _query("page", {**_WHOLE, "minimum": 1}, "Page number (from 1)."),
        _query(
            "per_page",
            {"type": "integer", "minimum": 1, "maximum": 1000},
            "Clients per page (default 100).",
        ),
    ]
    paging_headers: dict[str, object] = {
        "X-Total-Count": {
            "description": "With page/per_page: the number of matching clients.",
            "schema": {"type": "string"},
        },
        "Link": {
            "description": "With page/per_page: first, prev, next, last pages.",
            "schema": {"type": "string"},
        },
    }
    etag: dict[str, object] = {
        "ETag": {"description": "The client's version.", "schema": {"type": "string"}}
    }
    get_client = _query_route(
        client,
        "getClient",
        "One client",
        _ref(response_bodies.ClientBody),
        [_ID, _AS_OF],
        (404,),
        etag,
    )
    categories = _query_route(
        clients + "/categories",
        "listCategories",
        "The categories, with customer_count",
        _list_of(response_bodies.CategoryBody),
        [],
    )
    return [
        _query_route(
            clients,
            "listClients",
            "The clients, by id",
            _list_of(response_bodies.ClientBody),
            page,
            headers=paging_headers,
        ),
        _query_route(
            clients + "/summary",
            "getSummary",
            "Totals over the clients (exact sums)",
            _ref(response_bodies.SummaryBody),
            [_CATEGORY_ID, _AS_OF],
        ),
        _command(
            "post",
            clients,
            "createClient",
            "Create a client (only business_name is required)",
            request_bodies.NewClient,
            response_bodies.ClientBody,
            201,
            (),
        ),
        get_client,
        _command(
            "post",
            client,
            "updateClient",
            "Update the fields given",
            request_bodies.ClientFields,
            response_bodies.ClientBody,
            200,
            (404, 412),
            [
                _ID,
                _header(
                    "If-Match",
                    {"type": "string"},
                    "The client's ETag: 412 when it changed since.",
                ),
            ],
        ),
        Operation(
            method="delete",
            path=client,
            operation_id="deleteClient",
            summary="Delete a client (409 while its balance or deposit is not 0)",
            tag="commands",
            parameters=[_ID, _IDEMPOTENCY, _PREFER],
            responses=[
                _ok(_ref(response_bodies.DeletedBody), 200, _POSITION_HEADER),
                _ok(_ref(response_bodies.DeletedBody), 202, _POSITION_HEADER),
            ],
            errors=(404, 409, 422, 503),
        ),
        _command(
            "post",
            client + "/archive",
            "archiveClient",
            "Archive or unarchive: `archived` sets it; `{}` (no field) toggles it",
            request_bodies.ArchiveInput,
            response_bodies.ClientBody,
            200,
            (404,),
            [_ID],
        ),
        _command(
            "post",
            client + "/transactions",
            "postTransaction",
            "Post a transaction (debit or credit)",
            request_bodies.PostingInput,
            response_bodies.TransactionBody,
            201,
            (404,),
            [_ID],
        ),
        _query_route(
            client + "/transactions",
            "getStatement",
            "The statement: the client with its transactions and running balance",
            _ref(response_bodies.StatementBody),
            [_ID, *_PERIOD],
            (404,),
        ),
        _command(
            "post",
            client + "/deposits",
            "postDeposit",
            "Post a deposit (debit: received, credit: used; never below zero)",
            request_bodies.DepositInput,
            response_bodies.DepositBody,
            201,
            (404,),
            [_ID],
        ),
        _query_route(
            client + "/deposits",
            "listDeposits",
            "The deposit postings, with running deposit_after",
            _list_of(response_bodies.DepositBody),
            [_ID, *_PERIOD],
            (404,),
        ),
        _command(
            "post",
            client + "/transactions/{transaction_id}/reverse",
            "reverseTransaction",
            "Reverse a transaction: the reversal entry, with reversal_of",
            request_bodies.ReversalInput,
            response_bodies.TransactionBody,
            201,
            (404,),
            [_ID, _path("transaction_id", "The transaction to reverse.")],
        ),
        _command(
            "post",
            client + "/deposits/{deposit_id}/reverse",
            "reverseDeposit",
            "Reverse a deposit posting: the reversal entry, with reversal_of",
            request_bodies.ReversalInput,
            response_bodies.DepositBody,
            201,
            (404,),
            [_ID, _path("deposit_id", "The deposit posting to reverse.")],
        ),
        categories,
        msgspec.structs.replace(
            categories,
            path=clients + "/clients/categories",
            operation_id="listCategoriesAlias",
            summary="The categories (the seed's second path)",
        ),
        _command(
            "post",
            clients + "/category",
            "createCategory",
            "Create a category (names unique per business, ignoring case)",
            request_bodies.CategoryInput,
            response_bodies.CategoryBody,
            201,
            (),
        ),
        _import("/api/clients-import", "importClients"),
        _import(clients + "/import", "importClientsV3"),
        Operation(
            method="get",
            path=clients + "/imports/{import_id}",
            operation_id="getImportStatus",
            summary="An import's progress",
            tag="imports",
            parameters=[
                {
                    "name": "import_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            responses=[_ok(_ref(ImportStatus))],
            errors=(404, 503),
        ),
        Operation(
            method="get",
            path="/api/v3/audit/verify",
            operation_id="auditVerify",
            summary="Verify the business's hash chains and read models",
            tag="audit",
            responses=[_ok(_ref(Report))],
            errors=(503,),
        ),
        Operation(
            method="get",
            path=EXPORT_ROUTE,
            operation_id="exportClients",
            summary="The clients as an .xlsx download (no key: the bid is the key)",
            tag="queries",
            public=True,
            parameters=[
                {
                    "name": "bid",
                    "in": "path",
                    "required": True,
                    "description": "The business's bid.",
                    "schema": {"type": "string"},
                },
                _CATEGORY_ID,
                _MIN_POSITION,
            ],
            responses=[
                (
                    200,
                    {
                        "description": "The workbook",
                        "content": {XLSX: {"schema": {}}},
                    },
                )
            ],
            errors=(404, 422, 429, 503),
        ),
        Operation(
            method="get",
            path=client + "/events",
            operation_id="getClientEvents",
            summary="The client's whole history from the event store, oldest first",
            tag="events",
            parameters=[_ID],
            responses=[_ok(_ref(EventHistory))],
            errors=(404, 503),
        ),
        Operation(
            method="get",
            path="/api/v3/events",
            operation_id="listEvents",
            summary="The business's events in publication order",
            tag="events",
            parameters=[
                _query(
                    "after",
                    _WHOLE,
                    "0, or the position of one of the business's events.",
                ),
                _query(
                    "limit",
                    {**_WHOLE, "minimum": 1},
                    f"At most this many (default {LIMIT_DEFAULT}, capped at "
                    f"{LIMIT_MAX}).",
                ),
            ],
            responses=[_ok(_ref(EventsPage))],
            errors=(422, 503),
        ),
        _public_document("/api/v3/asyncapi.json", "asyncapi", "The AsyncAPI document"),
        _public_document("/api/v3/openapi.json", "openapi", "This document"),
        Operation(
            method="get",
            path="/docs",
            operation_id="docs",
            summary="This document, as a page to read (assets served here)",
            tag="documents",
            public=True,
            responses=[
                (
                    200,
                    {
                        "description": "HTML",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                )
            ],
        ),
        Operation(
            method="get",
            path="/docs/{asset}",
            operation_id="docsAsset",
            summary="The page's scripts",
            tag="documents",
            public=True,
            parameters=[
                {
                    "name": "asset",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            responses=[
                (
                    200,
                    {
                        "description": "The asset",
                        "content": {"*/*": {"schema": {}}},
                    },
                )
            ],
            errors=(404,),
        ),
        Operation(
            method="get",
            path="/healthz",
            operation_id="healthz",
            summary="The process serves",
            tag="health",
            public=True,
            responses=[_ok(_ref(HealthBody))],
        ),
        Operation(
            method="get",
            path="/metrics",
            operation_id="metrics",
            summary="Prometheus metrics (text exposition format)",
            tag="health",
            public=True,
            responses=[
                (
                    200,
                    {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                )
            ],
        ),
        Operation(
            method="get",
            path="/readyz",
            operation_id="readyz",
            summary="PostgreSQL, RabbitMQ and projection lag are fine",
            tag="health",
            public=True,
            responses=[
                _ok(_ref(ReadyBody)),
                _ok(_ref(ReadyBody), 503, description="Not ready"),
            ],
        ),
    ]


def _import(path: str, operation_id: str) -> Operation:
    return Operation(
        method="post",
        path=path,
        operation_id=operation_id,
        summary="Import customers from an .xlsx file",
        tag="imports",
        form=True,
        parameters=[_IDEMPOTENCY, _PREFER],
        responses=[
            _ok(_ref(ImportBody), 201, _POSITION_HEADER),
            _ok(
                _ref(ImportBody),
                202,
                _POSITION_HEADER,
                "Committed; not yet visible (`status_url` tells its progress)",
            ),
            _ok(
                {"anyOf": [_ref(DuplicateImportBody), _ref(MessageBody)]},
                409,
                description="This file was imported before (`import_id`), or a "
                "request with this Idempotency-Key is in progress",
            ),
        ],
        errors=(400, 408, 413, 415, 422, 503),
    )


def _public_document(path: str, operation_id: str, summary: str) -> Operation:
    return Operation(
        method="get",
        path=path,
        operation_id=operation_id,
        summary=summary,
        tag="documents",
        public=True,
        responses=[
            (200, {"description": "JSON", "content": _json({"type": "object"})})
        ],
    )


def _numbers_for_decimals(schema: object) -> object:
    """The schema with msgspec's Decimal (a string) replaced by a JSON number."""
    if schema == _DECIMAL:
        return {"type": "number"}
    if isinstance(schema, dict):
        return {key: _numbers_for_decimals(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_numbers_for_decimals(value) for value in schema]
    return schema


def document() -> dict[str, object]:
    """The OpenAPI 3.1 document (a JSON-ready dict)."""
    _, schemas = msgspec.json.schema_components(_BODIES, ref_template=_SCHEMAS)
    paths: dict[str, dict[str, object]] = {}
    for operation in operations():
        paths.setdefault(operation.path, {})[operation.method] = operation.rendered()
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Customers API",
            "version": "3.0.0",
            "description": _DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": _numbers_for_decimals(schemas),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The business's API key (`ledger business create`).",
                }
            },
        },
    }
    cleaned = clean_descriptions(document)
    assert isinstance(cleaned, dict)
    return cleaned


@functools.cache
def rendered() -> bytes:
    """The document as the committed file holds it (indented JSON, final newline).
    Built once per process: it depends on the code alone, and building it takes
    milliseconds of the event loop that each request to the public route would
    spend again."""
    return published(document())


if __name__ == "__main__":
    import sys

    sys.stdout.buffer.write(rendered())

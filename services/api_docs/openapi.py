"""The OpenAPI 3.1 document of the HTTP API, assembled from each service's operations.

Each service describes its routes beside its route table (services/*/operations.py,
from the pieces in services/api_docs/operation.py); this module puts them in the
document's order, with the schemas of their bodies from the structs the handlers
encode and request_bodies.py validates with (`msgspec.json.schema_components`).
Tests check the operations against the routes the app registers, both ways, and the
committed copy against a fresh generation: regenerate it with `make openapi`.

Money is a JSON number on the wire (the encoders use `decimal_format="number"`), so
the `Decimal` schema msgspec writes (a string of format `decimal`) is replaced by
`{"type": "number"}`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec

import shared
from services.api_docs import operations as documents
from services.api_docs.operation import ERROR_BODIES, SCHEMAS, Operation
from services.audit import operations as audit
from services.command_api import operations as commands
from services.command_api.spreadsheets import import_operations as imports
from services.http import operations as health
from services.query_api import import_status_operations as import_status
from services.query_api import monitor_operations as monitor_queries
from services.query_api import operations as queries
from services.webhooks import operations as webhooks
from shared import response_bodies as answers
from shared.schema_text import clean_descriptions, published

COMMITTED_PATH = Path(shared.__file__).with_name("openapi.json")
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
# The routes in the README's order, which interleaves the services (GET /clients is
# a query, POST /clients a command): each service says what its routes are, this
# only where each one stands.
CONTENTS = """
listClients getSummary getAgingReport getAgingWorkbook createClient getClient
updateClient deleteClient
archiveClient eraseClient postTransaction getStatement postDeposit listDeposits
reverseTransaction reverseDeposit listCategories listCategoriesAlias createCategory
importClients importClientsV3 getImportStatus auditVerify exportClients
getClientEvents listEvents createMonitor listMonitors getMonitor deleteMonitor
createWebhook listWebhooks getWebhook deleteWebhook
enableWebhook rotateWebhookSecret listWebhookDeliveries retryWebhookDelivery
asyncapi openapi docs docsAsset healthz metrics readyz
""".split()
# The bodies' schemas, in the document's order: first the response bodies both the
# command and the query side answer with.
_BODIES: list[type] = [
    answers.ClientBody,
    answers.StatementBody,
    answers.CategoryBody,
    answers.SummaryBody,
    answers.AgingBody,
    answers.TransactionBody,
    answers.DepositBody,
    answers.DeletedBody,
    answers.MonitorBody,
    answers.MonitorsBody,
    answers.MonitorDeletedBody,
    *imports.BODIES,
    *import_status.BODIES,
    *audit.BODIES,
    *queries.BODIES,
    *health.BODIES,
    *ERROR_BODIES,
    *commands.BODIES,
    *webhooks.BODIES,
]


def operations() -> list[Operation]:
    """Every route of the app, in the README's order."""
    every = [
        *commands.OPERATIONS,
        *imports.OPERATIONS,
        *import_status.OPERATIONS,
        *queries.OPERATIONS,
        *monitor_queries.OPERATIONS,
        *audit.OPERATIONS,
        *webhooks.OPERATIONS,
        *documents.OPERATIONS,
        *health.OPERATIONS,
    ]
    by_id = {operation.operation_id: operation for operation in every}
    assert len(by_id) == len(every), "operation ids are unique"
    assert set(by_id) == set(CONTENTS), "CONTENTS names every operation once"
    return [by_id[operation_id] for operation_id in CONTENTS]


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
    _, schemas = msgspec.json.schema_components(_BODIES, ref_template=SCHEMAS)
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
        "webhooks": webhooks.DELIVERY,
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
    """The committed file's bytes, built once per process: the public route serves
    them on every request, and they depend on the code alone."""
    return published(document())


if __name__ == "__main__":
    import sys

    sys.stdout.buffer.write(rendered())

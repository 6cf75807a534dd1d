"""Each service's operations describe its own routes, and the assembled document
refers only to schemas it holds."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from services.api_docs import openapi
from services.api_docs import operations as document_operations
from services.api_docs import routes as document_routes
from services.api_docs.operation import Operation
from services.audit import operations as audit_operations
from services.audit import routes as audit_routes
from services.command_api import app as command_app
from services.command_api import operations as command_operations
from services.command_api.spreadsheets import import_operations
from services.http import health, metrics
from services.http import operations as health_operations
from services.query_api import app as query_app
from services.query_api import import_status_operations, monitor_operations
from services.query_api import operations as query_operations


def _health(app: web.Application) -> None:
    health.setup(app)
    metrics.setup(app)


SERVICES: list[tuple[str, list[Operation], Callable[[web.Application], object]]] = [
    (
        "command_api",
        [*command_operations.OPERATIONS, *import_operations.OPERATIONS],
        command_app.setup,
    ),
    (
        "query_api",
        [
            *query_operations.OPERATIONS,
            *import_status_operations.OPERATIONS,
            *monitor_operations.OPERATIONS,
        ],
        query_app.setup,
    ),
    ("audit", audit_operations.OPERATIONS, audit_routes.setup),
    ("api_docs", document_operations.OPERATIONS, document_routes.setup),
    ("http", health_operations.OPERATIONS, _health),
]


@pytest.mark.parametrize(
    ("operations", "setup"),
    [(operations, setup) for _, operations, setup in SERVICES],
    ids=[name for name, _, _ in SERVICES],
)
def test_each_service_describes_exactly_the_routes_it_registers(
    operations: list[Operation], setup: Callable[[web.Application], object]
) -> None:
    """The routes one service's setup adds to an empty app, and the (method, path)
    of the operations beside its route table, are the same set: an operation
    cannot stand in another service's module, nor a route lack its own."""
    app = web.Application()
    setup(app)
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    described = {(operation.method, operation.path) for operation in operations}
    assert described == registered


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_in_the_document_names_one_of_its_schemas() -> None:
    """The bodies each operations module lists for the document's schemas cover
    every struct its operations refer to (a missing one would be a dangling $ref)."""
    document: dict[str, Any] = json.loads(openapi.rendered())
    schemas = set(document["components"]["schemas"])
    referred = {ref.removeprefix("#/components/schemas/") for ref in _refs(document)}
    assert referred - schemas == set()
    assert {"PostingInput", "DepositInput", "EventsPage", "Report"} <= referred


def test_the_document_lists_the_routes_in_the_readme_order() -> None:
    """openapi.CONTENTS places every operation once; the paths follow it."""
    ids = [operation.operation_id for operation in openapi.operations()]
    assert ids == openapi.CONTENTS
    assert len(set(ids)) == len(ids) == 45

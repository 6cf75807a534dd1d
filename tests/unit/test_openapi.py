"""The OpenAPI document is generated from the msgspec schemas, cannot drift, and
documents every route the app registers (and no other)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from services.api_docs import openapi
from services.http.app import create_app
from services.http.edge import MessageBody, ValidationBody
from services.query_api.feed import EventsBody
from services.query_api.operations import EventHistory, EventsPage
from shared import response_bodies
from shared.config import Settings
from shared.events import Envelope
from shared.money import to_number

METHODS = {"get", "post", "put", "patch", "delete"}


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi.rendered())
    return document


def test_the_committed_document_equals_a_fresh_generation() -> None:
    """shared/openapi.json is exactly what `make openapi` writes now: a change to a
    response struct, a request struct or the route table not regenerated fails."""
    assert openapi.COMMITTED_PATH.read_bytes() == openapi.rendered(), (
        "shared/openapi.json is stale: run `make openapi`"
    )


def test_every_registered_route_is_documented_and_every_documented_one_exists() -> None:
    """The app's routes (aiohttp adds HEAD beside each GET: not listed) and the
    document's operations are the same set of (method, path)."""
    app = create_app(Settings())
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path)
        for path, item in _document()["paths"].items()
        for method in item
        if method in METHODS
    }
    assert registered - documented == set(), "routes missing from the document"
    assert documented - registered == set(), "documented routes the app lacks"
    assert len(registered) == 45


def test_the_document_is_openapi_3_1_with_bearer_security_and_public_routes() -> None:
    document = _document()
    assert document["openapi"] == "3.1.0"
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["type"] == "http"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    public = {
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if operation.get("security") == []
    }
    assert public == {
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/docs"),
        ("get", "/docs/{asset}"),
        ("get", "/api/v3/openapi.json"),
        ("get", "/api/v3/asyncapi.json"),
        ("get", "/api/v3/clients/clients-print/{bid}"),
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            secured = (method, path) not in public
            assert ("401" in operation["responses"]) is secured, (method, path)


@pytest.mark.parametrize(
    "struct",
    [
        response_bodies.ClientBody,
        response_bodies.StatementBody,
        response_bodies.TransactionBody,
        response_bodies.DepositBody,
        response_bodies.CategoryBody,
        response_bodies.SummaryBody,
        response_bodies.DeletedBody,
        MessageBody,
        ValidationBody,
    ],
)
def test_each_body_schema_has_exactly_its_structs_fields(struct: type) -> None:
    """Field for field from the struct the handlers encode (generated, not copied)."""
    schema = _document()["components"]["schemas"][struct.__name__]
    assert list(schema["properties"]) == list(struct.__struct_fields__)  # type: ignore[attr-defined]


def test_money_is_a_json_number_as_the_encoders_write_it() -> None:
    """msgspec describes Decimal as a string; on the wire it is a number."""
    schemas = _document()["components"]["schemas"]
    client = schemas["ClientBody"]["properties"]
    assert client["deposit_amount"] == {"type": "number"}
    assert client["unformated_balance"] == {"type": "number"}
    assert client["balance"] == {"type": "string"}
    assert schemas["SummaryBody"]["properties"]["total_balance"] == {"type": "number"}
    encoded = json.loads(
        response_bodies.encoder.encode(
            response_bodies.SummaryBody(
                total_deposits=to_number(150),
                customer_count=1,
                archived_customers=0,
                unarchived_customers=1,
                total_balance=to_number(-1234567),
            )
        )
    )
    assert encoded["total_balance"] == -12345.67
    assert '"format": "decimal"' not in openapi.rendered().decode()


def test_errors_are_the_laravel_bodies() -> None:
    """Every 422 refers to ValidationBody, every other refusal to MessageBody; every
    503 carries Retry-After."""
    document = _document()
    seen = set()
    for item in document["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if status == "422":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ValidationBody"}
                    seen.add(status)
                elif status in ("400", "401", "404", "412", "413", "415"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/MessageBody"}
                    seen.add(status)
                elif status == "503" and operation["operationId"] != "readyz":
                    assert "Retry-After" in response["headers"]
    assert seen == {"400", "401", "404", "412", "413", "415", "422"}
    body = msgspec.json.encode(ValidationBody(message="m", errors={"f": ["e"]}))
    assert body == b'{"message":"m","errors":{"f":["e"]}}'


def test_the_feed_pages_are_described_with_the_feeds_own_fields() -> None:
    """The feed sends envelopes as raw message bytes (`msgspec.Raw`); the document
    describes them as Envelope, in structs with exactly the feed body's fields."""
    assert EventsPage.__struct_fields__ == EventsBody.__struct_fields__
    assert EventHistory.__struct_fields__ == ("data",)
    schemas = _document()["components"]["schemas"]
    items = schemas["EventsPage"]["properties"]["data"]["items"]
    assert items == {"$ref": "#/components/schemas/Envelope"}
    assert list(schemas["Envelope"]["properties"]) == list(Envelope.__struct_fields__)

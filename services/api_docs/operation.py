"""One route as the OpenAPI document describes it, and the answers routes share.

Each service describes its routes beside its route table (`operations.py` in its
folder) with these pieces; services/api_docs/openapi.py assembles the document. What
every keyed route may answer (401, 429, 503) and the error bodies (422 Laravel's,
others `{"message"}`) are added here, once, so an operation lists only its own.
"""

from __future__ import annotations

import msgspec

from services.http.edge import MessageBody, ValidationBody

SCHEMAS = "#/components/schemas/{name}"
STATUS_TEXT = {
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
POSITION_HEADER: dict[str, object] = {
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
Answer = tuple[int, dict[str, object]]
JSON = "application/json"
ERROR_BODIES = (MessageBody, ValidationBody)


def ref(struct: type) -> dict[str, object]:
    return {"$ref": SCHEMAS.format(name=struct.__name__)}


def list_of(struct: type) -> dict[str, object]:
    return {"type": "array", "items": ref(struct)}


def json_content(schema: dict[str, object]) -> dict[str, object]:
    return {JSON: {"schema": schema}}


def answer(
    schema: dict[str, object],
    status: int = 200,
    headers: dict[str, object] | None = None,
    description: str | None = None,
) -> Answer:
    """A JSON answer: its status, and the response the document lists under it."""
    response: dict[str, object] = {
        "description": description or STATUS_TEXT[status],
        "content": json_content(schema),
    }
    if headers:
        response["headers"] = headers
    return status, response


def content(
    description: str, media_type: str, schema: dict[str, object] | None = None
) -> Answer:
    """A 200 in another media type than JSON (a page, a file, metrics text)."""
    return 200, {
        "description": description,
        "content": {media_type: {"schema": {} if schema is None else schema}},
    }


def _error(status: int) -> dict[str, object]:
    body = ValidationBody if status == 422 else MessageBody
    response: dict[str, object] = {
        "description": STATUS_TEXT[status],
        "content": json_content(ref(body)),
    }
    if status in (429, 503):
        response["headers"] = _RETRY_HEADER
    return response


class Operation(msgspec.Struct, frozen=True):
    """One route of the table: what the document says about it. `body` is a JSON
    body's struct; `request_body` any other body, as the document writes it. The
    fields up to `responses` may be given in order, as a row of the table."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: list[Answer]
    errors: tuple[int, ...] = ()
    parameters: list[dict[str, object]] = []
    body: type | None = None
    request_body: dict[str, object] | None = None
    public: bool = False

    def rendered(self) -> dict[str, object]:
        operation: dict[str, object] = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": [self.tag],
        }
        if self.parameters:
            operation["parameters"] = self.parameters
        if self.body is not None:
            # An empty body reads as `{}`: required only where a field is.
            fields = msgspec.structs.fields(self.body)
            operation["requestBody"] = {
                "required": any(field.required for field in fields),
                "content": json_content(ref(self.body)),
            }
        if self.request_body is not None:
            operation["requestBody"] = self.request_body
        operation["responses"] = self._responses()
        if self.public:
            operation["security"] = []
        return operation

    def _responses(self) -> dict[str, object]:
        responses = {str(status): response for status, response in self.responses}
        # Every keyed route may meet a fair-use limit (429) or a busy pool (503).
        keyed = () if self.public else (401, 429, 503)
        for status in sorted({*self.errors, *keyed}):
            responses[str(status)] = _error(status)
        return dict(sorted(responses.items(), key=lambda item: int(item[0])))


def public_get(
    tag: str,
    path: str,
    operation_id: str,
    summary: str,
    *responses: Answer,
    parameters: tuple[dict[str, object], ...] = (),
    errors: tuple[int, ...] = (),
) -> Operation:
    """A GET anyone may call, without a key: the probes, the documents, the export."""
    return Operation(
        "get",
        path,
        operation_id,
        summary,
        tag,
        list(responses),
        errors=errors,
        parameters=list(parameters),
        public=True,
    )


def public_document(path: str, operation_id: str, summary: str) -> Operation:
    """One of the published JSON documents (OpenAPI, AsyncAPI)."""
    schema: dict[str, object] = {"type": "object"}
    return public_get(
        "documents", path, operation_id, summary, content("JSON", JSON, schema)
    )

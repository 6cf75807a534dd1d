"""The import routes (import_routes.py) as the OpenAPI document describes them: the
upload form and its answers. (An import's status is a query: services/query_api.)"""

from __future__ import annotations

from services.api_docs.operation import POSITION_HEADER, Operation, answer, ref
from services.command_api.operations import IDEMPOTENCY, PREFER
from services.command_api.spreadsheets.import_routes import (
    FORM_FIELDS,
    DuplicateImportBody,
    ImportBody,
)
from services.http.edge import MessageBody

BODIES = (ImportBody, DuplicateImportBody)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FIELD_TEXT = {
    "category_id": 'One of the business\'s categories (default "Uncategorised").',
    "allow_duplicate": "`true`: import a file imported before.",
}
_FORM: dict[str, object] = {
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
                        "description": "The .xlsx file (20 MiB at most, counting "
                        "every part of the form; at most 8 parts, parts other than "
                        "these three are read and dropped).",
                    },
                    **{
                        field: {"type": "string", "description": _FIELD_TEXT[field]}
                        for field in FORM_FIELDS
                    },
                },
            }
        }
    },
}


def _upload(path: str, operation_id: str) -> Operation:
    return Operation(
        method="post",
        path=path,
        operation_id=operation_id,
        summary="Import customers from an .xlsx file",
        tag="imports",
        request_body=_FORM,
        parameters=[IDEMPOTENCY, PREFER],
        responses=[
            answer(ref(ImportBody), 201, POSITION_HEADER),
            answer(
                ref(ImportBody),
                202,
                POSITION_HEADER,
                "Committed; not yet visible (`status_url` tells its progress)",
            ),
            answer(
                {"anyOf": [ref(DuplicateImportBody), ref(MessageBody)]},
                409,
                description="This file was imported before (`import_id`), or a "
                "request with this Idempotency-Key is in progress",
            ),
        ],
        errors=(400, 408, 413, 415, 422, 503),
    )


OPERATIONS = [
    _upload("/api/clients-import", "importClients"),
    _upload("/api/v3/clients/import", "importClientsV3"),
]

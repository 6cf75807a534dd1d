"""The import status route (import_status.py) as the OpenAPI document describes it."""

from __future__ import annotations

from services.api_docs.operation import Operation, answer, ref
from services.api_docs.parameters import path_text
from services.query_api.import_status import ImportStatus

BODIES = (ImportStatus,)
OPERATIONS = [
    Operation(
        "get",
        "/api/v3/clients/imports/{import_id}",
        "getImportStatus",
        "An import's progress",
        "imports",
        [answer(ref(ImportStatus))],
        errors=(404, 503),
        parameters=[path_text("import_id")],
    ),
]

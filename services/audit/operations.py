"""The audit route (routes.py) as the OpenAPI document describes it."""

from __future__ import annotations

from services.api_docs.operation import Operation, answer, ref
from services.audit.report import Report

BODIES = (Report,)
OPERATIONS = [
    Operation(
        method="get",
        path="/api/v3/audit/verify",
        operation_id="auditVerify",
        summary="Verify the business's hash chains and read models",
        tag="audit",
        responses=[answer(ref(Report))],
        errors=(503,),
    ),
]

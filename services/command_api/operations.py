"""The command routes (routes.py) as the OpenAPI document describes them.

Request bodies are the structs of request_bodies.py, the same ones the routes
validate with; answers are the response bodies the renderers encode.
"""

from __future__ import annotations

from services.api_docs.operation import POSITION_HEADER, Operation, answer, ref
from services.api_docs.parameters import CLIENT_ID, header, path_id, path_text
from services.command_api import request_bodies as bodies
from services.command_api.monitor_bodies import MonitorInput
from shared import response_bodies as answers

IDEMPOTENCY = header(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "A retry with the same key and request answers what the first one answered.",
)
PREFER = header(
    "Prefer",
    {"type": "string"},
    "`respond-async`: answer 202 right after the commit (other preferences are "
    "ignored).",
)
_IF_MATCH = header(
    "If-Match", {"type": "string"}, "The client's ETag: 412 when it changed since."
)
_CLIENT = "/api/v3/clients/{id}"
# The request bodies, for the document's schemas.
BODIES = (
    bodies.NewClient,
    bodies.ClientFields,
    bodies.CategoryInput,
    bodies.ArchiveInput,
    bodies.EraseInput,
    bodies.PostingInput,
    bodies.DepositInput,
    bodies.ReversalInput,
    MonitorInput,
)
MONITOR_ID = path_text("id", "The monitor's id (a UUID).")


def _command(
    path: str,
    operation_id: str,
    summary: str,
    body: type,
    answer_body: type,
    status: int = 201,
    errors: tuple[int, ...] = (404,),
    parameters: tuple[dict[str, object], ...] = (CLIENT_ID,),
) -> Operation:
    """A command: JSON body, answered once visible (or 202 with the same body)."""
    schema = ref(answer_body)
    responses = [
        answer(schema, status, POSITION_HEADER),
        answer(schema, 202, POSITION_HEADER),
    ]
    return Operation(
        "post",
        path,
        operation_id,
        summary,
        "commands",
        responses,
        errors=tuple(sorted({400, 408, 409, 413, 415, 422, 503, *errors})),
        parameters=[*parameters, IDEMPOTENCY, PREFER],
        body=body,
    )


OPERATIONS = [
    _command(
        "/api/v3/clients",
        "createClient",
        "Create a client (only business_name is required)",
        bodies.NewClient,
        answers.ClientBody,
        errors=(),
        parameters=(),
    ),
    _command(
        _CLIENT,
        "updateClient",
        "Update the fields given",
        bodies.ClientFields,
        answers.ClientBody,
        status=200,
        errors=(404, 412),
        parameters=(CLIENT_ID, _IF_MATCH),
    ),
    Operation(
        method="delete",
        path=_CLIENT,
        operation_id="deleteClient",
        summary="Delete a client (409 while its balance or deposit is not 0)",
        tag="commands",
        parameters=[CLIENT_ID, IDEMPOTENCY, PREFER],
        responses=[
            answer(ref(answers.DeletedBody), 200, POSITION_HEADER),
            answer(ref(answers.DeletedBody), 202, POSITION_HEADER),
        ],
        errors=(404, 409, 422, 503),
    ),
    _command(
        _CLIENT + "/archive",
        "archiveClient",
        "Archive or unarchive: `archived` sets it; `{}` (no field) toggles it",
        bodies.ArchiveInput,
        answers.ClientBody,
        status=200,
    ),
    _command(
        _CLIENT + "/erase",
        "eraseClient",
        "Erase the client's personal data: its key is destroyed, its figures stay;"
        " the answer has the personal fields null and `erased: true` (archived and"
        " deleted clients too; a second erase answers the same; 409 for a client"
        " whose events were written before personal data was sealed)",
        bodies.EraseInput,
        answers.ClientBody,
        status=200,
    ),
    _command(
        _CLIENT + "/transactions",
        "postTransaction",
        "Post a transaction (debit or credit)",
        bodies.PostingInput,
        answers.TransactionBody,
    ),
    _command(
        _CLIENT + "/deposits",
        "postDeposit",
        "Post a deposit (debit: received, credit: used; never below zero)",
        bodies.DepositInput,
        answers.DepositBody,
    ),
    _command(
        _CLIENT + "/transactions/{transaction_id}/reverse",
        "reverseTransaction",
        "Reverse a transaction: the reversal entry, with reversal_of",
        bodies.ReversalInput,
        answers.TransactionBody,
        parameters=(
            CLIENT_ID,
            path_id("transaction_id", "The transaction to reverse."),
        ),
    ),
    _command(
        _CLIENT + "/deposits/{deposit_id}/reverse",
        "reverseDeposit",
        "Reverse a deposit posting: the reversal entry, with reversal_of",
        bodies.ReversalInput,
        answers.DepositBody,
        parameters=(
            CLIENT_ID,
            path_id("deposit_id", "The deposit posting to reverse."),
        ),
    ),
    _command(
        "/api/v3/clients/category",
        "createCategory",
        "Create a category (names unique per business, ignoring case)",
        bodies.CategoryInput,
        answers.CategoryBody,
        errors=(),
        parameters=(),
    ),
    _command(
        "/api/v3/monitors",
        "createMonitor",
        "Create a balance monitor: for each client in its scope, a monitor.triggered"
        " event each time the figure crosses the line (422 past"
        " LEDGER_MONITORS_PER_BUSINESS_MAX monitors)",
        MonitorInput,
        answers.MonitorBody,
        errors=(),
        parameters=(),
    ),
    Operation(
        method="delete",
        path="/api/v3/monitors/{id}",
        operation_id="deleteMonitor",
        summary="Delete a balance monitor: it fires no more",
        tag="commands",
        parameters=[MONITOR_ID, IDEMPOTENCY, PREFER],
        responses=[
            answer(ref(answers.MonitorDeletedBody), 200, POSITION_HEADER),
            answer(ref(answers.MonitorDeletedBody), 202, POSITION_HEADER),
        ],
        errors=(404, 503),
    ),
]

"""Hop 1 for spreadsheets: POST /api/clients-import and /api/v3/clients/import.

Read the upload, validate every row in a worker process (parse_pool.py), decide and
encode every event before BEGIN, commit them in one short transaction
(import_commit.py), then wait for read-your-writes (up to 5,000 rows) or answer 202
with a status URL (above).
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import msgspec
from aiohttp import web

from services.command_api import category_names, idempotency
from services.command_api.spreadsheets import import_store
from services.command_api.spreadsheets.import_commit import (
    Prepared,
    commit_import,
    prepare,
)
from services.command_api.spreadsheets.import_parsing import parse_upload
from services.command_api.spreadsheets.import_store import DuplicateImport, ImportRecord
from services.command_api.spreadsheets.uploads import Upload, read_upload
from services.command_api.submissions import IdempotencyClaim, Result
from services.http.edge import (
    CLOCK,
    POOL,
    SETTINGS,
    business_of,
    json_response,
    whole_number,
)
from services.http.fair_use import fair_use_of
from services.http.metrics import METRICS
from services.http.projection_wait import WAITER
from services.http.replica_reads import visible_everywhere
from services.http.request_log import CORRELATION_ID
from shared import commands as c
from shared import events as e
from shared.domain import DEFAULT_CATEGORY, name_key
from shared.errors import invalid
from shared.key_settings import settings_master_keys
from shared.money import to_number
from shared.response_bodies import encoder
from shared.store.api_keys import Business

log = logging.getLogger(__name__)
SYNC_ROWS_MAX = 5_000
STATUS_PATH = "/api/v3/clients/imports/{import_id}"
FORM_FIELDS = ("category_id", "allow_duplicate")
routes = web.RouteTableDef()


class ImportBody(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """An import's answer: 201, or 202 with `status_url` (asynchronous)."""

    import_id: str
    category_id: int
    imported: int
    total_unpaid: Decimal
    status_url: str | None = None


class DuplicateImportBody(msgspec.Struct, kw_only=True, frozen=True):
    """409: this file was imported into this business before (`import_id`)."""

    message: str
    import_id: str


@routes.post("/api/clients-import")
@routes.post("/api/v3/clients/import")
async def import_clients(request: web.Request) -> web.Response:
    business = business_of(request)
    # The slot is taken before the upload is read: reading 20 MiB is work too.
    async with fair_use_of(request).expensive_work(business.business_id):
        return await _read_and_import(request, business)


async def _read_and_import(request: web.Request, business: Business) -> web.Response:
    upload = await read_upload(request, "customers", FORM_FIELDS)
    claim = _claim(request, upload)
    async with idempotency.in_flight(request, business.business_id, claim):
        return await _import(request, business, upload, claim)


async def _import(
    request: web.Request,
    business: Business,
    upload: Upload,
    claim: IdempotencyClaim | None,
) -> web.Response:
    pool = request.app[POOL]
    if claim is not None:
        answered = await idempotency.replayed(pool, business.business_id, claim)
        if answered is not None:
            return _replay(answered)
    rows = await parse_upload(request, upload.file)
    names = await category_names.of_business(pool, business.business_id)
    category_id = _category_id(upload.fields.get("category_id", ""), names)
    if not _allow_duplicate(upload):
        first = await import_store.first_import(
            pool, business.business_id, upload.sha256
        )
        if first is not None:
            return _duplicate(first)
    command = c.ImportClients(
        business_id=business.business_id,
        import_id=str(uuid.uuid4()),
        category_id=category_id,
        file_sha256=upload.sha256,
        rows=rows,
    )
    return await _commit(request, business, command, names, claim, upload)


def _allow_duplicate(upload: Upload) -> bool:
    return upload.fields.get("allow_duplicate", "").strip().casefold() == "true"


async def _commit(
    request: web.Request,
    business: Business,
    command: c.ImportClients,
    names: dict[str, int],
    claim: IdempotencyClaim | None,
    upload: Upload,
) -> web.Response:
    request[CORRELATION_ID] = command.import_id  # every event of the import carries it
    now = request.app[CLOCK].now()  # recorded_at and the opening entries' date
    metadata = e.Metadata(
        correlation_id=command.import_id,
        principal=f"api_key:{business.key_id}",
        idempotency_key=claim.key if claim else None,
    )
    settings = request.app[SETTINGS]
    keys = (settings.hmac_key.encode(), settings_master_keys(settings).current)
    prepared = await prepare(request.app[POOL], command, names, metadata, now, keys)
    # Above 5,000 rows, or when asked (`Prefer: respond-async`), answer 202 with a
    # status URL right after the commit instead of waiting for the read models.
    asynchronous = "respond-async" in request.headers.get("Prefer", "")
    status, body = _body(command, asynchronous or len(command.rows) > SYNC_ROWS_MAX)
    record = _record(command, _allow_duplicate(upload))
    try:
        last = await commit_import(
            request.app[POOL], prepared, record, claim, Result(status=status, body=body)
        )
    except DuplicateImport as duplicate:
        return _duplicate(duplicate.first)
    _observe(request, command, prepared)
    if status == 201:
        status = await _read_your_writes(request, last, claim)
    headers = {"X-Ledger-Position": str(last.position)}
    return json_response(body, status=status, headers=headers)


def _observe(
    request: web.Request, command: c.ImportClients, prepared: Prepared
) -> None:
    """Count the committed import in /metrics and log it."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.import_rows.inc(len(command.rows))
        metrics.count_appended(e.event_type(event.payload) for event in prepared.events)
    log.info(
        "import %s committed: %d rows, %d events",
        command.import_id,
        len(command.rows),
        len(prepared.events),
        extra={
            "event": "import.committed",
            "import_id": command.import_id,
            "business_id": command.business_id,
            "rows": len(command.rows),
            "events": len(prepared.events),
        },
    )


def _record(command: c.ImportClients, allow_duplicate: bool) -> ImportRecord:
    return ImportRecord(
        import_id=command.import_id,
        business_id=command.business_id,
        file_sha256=command.file_sha256,
        category_id=command.category_id,
        imported=len(command.rows),
        total_unpaid_minor=sum(row.unpaid_minor for row in command.rows),
        allow_duplicate=allow_duplicate,
    )


async def _read_your_writes(
    request: web.Request, last: e.Envelope, claim: IdempotencyClaim | None
) -> int:
    """201 once the read models show the import's last event (the projections apply
    a queue in order, so every earlier one too); 202 if the wait runs out."""
    timeout_s = request.app[SETTINGS].read_your_writes_timeout_s
    projected = request.app[WAITER].wait_for_stream(
        last.stream_id, last.version, timeout_s
    )
    visible = await visible_everywhere(request, projected, timeout_s)
    if visible:
        return 201
    if claim is not None:  # a retry must answer what this request answers
        await idempotency.mark_accepted(request.app[POOL], last.business_id, claim.key)
    return 202


def _category_id(text: str, known: dict[str, int]) -> int:
    """The form's category_id (one of the business's), else "Uncategorised"."""
    text = text.strip()
    if not text:
        return known[name_key(DEFAULT_CATEGORY)]
    category_id = whole_number(text)
    if category_id is None or category_id not in known.values():
        raise invalid("category_id", "The selected category id is invalid.")
    return category_id


def _body(command: c.ImportClients, asynchronous: bool) -> tuple[int, bytes]:
    body = ImportBody(
        import_id=command.import_id,
        category_id=command.category_id,
        imported=len(command.rows),
        total_unpaid=to_number(sum(row.unpaid_minor for row in command.rows)),
        status_url=(
            STATUS_PATH.format(import_id=command.import_id) if asynchronous else None
        ),
    )
    return (202 if asynchronous else 201), encoder.encode(body)


def _claim(request: web.Request, upload: Upload) -> IdempotencyClaim | None:
    """What the import means: the path, the file's content and the form fields (the
    multipart boundary changes per retry, so the raw body cannot be hashed)."""
    fields = sorted(upload.fields.items())
    meaning = [request.path, upload.sha256, *(f"{k}={v}" for k, v in fields)]
    return idempotency.request_claim(request, [part.encode() for part in meaning])


def _replay(result: Result) -> web.Response:
    headers = {"Idempotent-Replayed": "true"}
    if result.position is not None:
        headers["X-Ledger-Position"] = str(result.position)
    return json_response(result.body, status=result.status, headers=headers)


def _duplicate(first: str) -> web.Response:
    body = DuplicateImportBody(
        message="This file was already imported into this business", import_id=first
    )
    return json_response(body, status=409)

"""Hop 1 for spreadsheets: POST /api/clients-import and /api/v3/clients/import.

Read the upload, validate every row in a worker process (parse_pool.py), build every
event before
BEGIN, commit them in one short transaction, then wait for read-your-writes (up to
5,000 rows) or answer 202 with a status URL (above).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from decimal import Decimal

import msgspec
from aiohttp import web

from services.command_api import import_events, import_store
from services.command_api.batch_io import DEFAULT_CATEGORY, name_key
from services.command_api.excel_import import ImportRow
from services.command_api.import_parsing import parse_upload
from services.command_api.routes import IN_FLIGHT, idempotency_claim
from services.command_api.submissions import IdempotencyClaim, Result
from services.command_api.uploads import Upload, read_upload
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
from services.http.request_log import CORRELATION_ID
from shared import events as e
from shared.errors import IdempotencyConflict, IdempotencyInProgress, invalid
from shared.money import to_number
from shared.response_bodies import encoder
from shared.store.api_keys import Business
from shared.store.event_store import NewEvent

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
    with fair_use_of(request).expensive_work(business.business_id):
        return await _read_and_import(request, business)


async def _read_and_import(request: web.Request, business: Business) -> web.Response:
    upload = await read_upload(request, "customers", FORM_FIELDS)
    claim = _claim(request, upload)
    slot = (business.business_id, claim.key) if claim else None
    in_flight = request.app[IN_FLIGHT]
    if slot is not None and slot in in_flight:
        raise IdempotencyInProgress()
    if slot is not None:
        in_flight.add(slot)
    try:
        return await _import(request, business, upload, claim)
    finally:
        if slot is not None:
            in_flight.discard(slot)


async def _import(
    request: web.Request,
    business: Business,
    upload: Upload,
    claim: IdempotencyClaim | None,
) -> web.Response:
    pool = request.app[POOL]
    if claim is not None:
        stored = await import_store.stored_response(pool, business.business_id, claim)
        if stored is not None and stored.request_hash != claim.request_hash:
            raise IdempotencyConflict()
        if stored is not None:
            return _replay(stored.result)
    rows = await parse_upload(request, upload.file)
    known = await import_store.categories(pool, business.business_id)
    category_id = _category_id(upload.fields.get("category_id", ""), known)
    if not _allow_duplicate(upload):
        first = await import_store.first_import(
            pool, business.business_id, upload.sha256
        )
        if first is not None:
            return _duplicate(first)
    return await _commit(request, business, upload, claim, rows, category_id, known)


def _allow_duplicate(upload: Upload) -> bool:
    return upload.fields.get("allow_duplicate", "").strip().casefold() == "true"


async def _commit(
    request: web.Request,
    business: Business,
    upload: Upload,
    claim: IdempotencyClaim | None,
    rows: list[ImportRow],
    category_id: int,
    known: dict[str, int],
) -> web.Response:
    pool = request.app[POOL]
    plan = _plan(request, business, upload, claim, category_id, known, rows)
    request[CORRELATION_ID] = plan.import_id  # every event of the import carries it
    accounts, entries, _ = import_events.counts(rows)
    ids = await import_store.allocate(
        pool, len(rows), accounts, entries, len(plan.new_categories)
    )
    events = await asyncio.to_thread(import_events.build, plan, rows, ids)
    records = await asyncio.to_thread(import_store.copy_records, events)
    # Above 5,000 rows, or when asked (`Prefer: respond-async`), answer 202 with a
    # status URL right after the commit instead of waiting for the read models.
    asynchronous = "respond-async" in request.headers.get("Prefer", "")
    status, body = _body(plan, rows, asynchronous or len(rows) > SYNC_ROWS_MAX)
    committed = await import_store.commit(
        request.app[SETTINGS].database_url,
        _record(plan, rows, ids, _allow_duplicate(upload)),
        events,
        records,
        claim,
        Result(status=status, body=body),
    )
    if committed.duplicate_of is not None:
        return _duplicate(committed.duplicate_of)
    assert committed.last is not None
    _observe(request, plan, rows, events)
    if status == 201:
        status = await _read_your_writes(request, committed.last, claim)
    headers = {"X-Ledger-Position": str(committed.last.position)}
    return json_response(body, status=status, headers=headers)


def _observe(
    request: web.Request,
    plan: import_events.ImportPlan,
    rows: Sequence[ImportRow],
    events: Sequence[NewEvent],
) -> None:
    """Count the committed import in /metrics and log it."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.import_rows.inc(len(rows))
        metrics.count_appended(e.event_type(event.payload) for event in events)
    log.info(
        "import %s committed: %d rows, %d events",
        plan.import_id,
        len(rows),
        len(events),
        extra={
            "event": "import.committed",
            "import_id": plan.import_id,
            "business_id": plan.business_id,
            "rows": len(rows),
            "events": len(events),
        },
    )


def _record(
    plan: import_events.ImportPlan,
    rows: Sequence[ImportRow],
    ids: import_events.ImportIds,
    allow_duplicate: bool,
) -> import_store.ImportRecord:
    return import_store.ImportRecord(
        import_id=plan.import_id,
        business_id=plan.business_id,
        file_sha256=plan.file_sha256,
        category_id=plan.category_id,
        imported=len(rows),
        total_unpaid_minor=sum(row.unpaid_minor for row in rows),
        new_category_names=dict(zip(plan.new_categories, ids.categories, strict=True)),
        allow_duplicate=allow_duplicate,
    )


async def _read_your_writes(
    request: web.Request, last: e.Envelope, claim: IdempotencyClaim | None
) -> int:
    """201 once the read models show the import's last event (the projections apply
    a queue in order, so every earlier one too); 202 if the wait runs out."""
    visible = await request.app[WAITER].wait_for_stream(
        last.stream_id, last.version, request.app[SETTINGS].read_your_writes_timeout_s
    )
    if visible:
        return 201
    if claim is not None:  # a retry must answer what this request answers
        await _record_accepted(request, last.business_id, claim.key)
    return 202


async def _record_accepted(request: web.Request, business_id: int, key: str) -> None:
    await request.app[POOL].execute(
        "UPDATE idempotency_keys SET status = 202 WHERE business_id = $1 AND key = $2",
        business_id,
        key,
    )


def _plan(
    request: web.Request,
    business: Business,
    upload: Upload,
    claim: IdempotencyClaim | None,
    category_id: int,
    known: dict[str, int],
    rows: Sequence[ImportRow],
) -> import_events.ImportPlan:
    import_id = str(uuid.uuid4())
    now = request.app[CLOCK].now()  # recorded_at and the opening entries' date
    return import_events.ImportPlan(
        import_id=import_id,
        business_id=business.business_id,
        category_id=category_id,
        today=now.date(),
        now=now,
        metadata=e.Metadata(
            correlation_id=import_id,
            principal=f"api_key:{business.key_id}",
            idempotency_key=claim.key if claim else None,
        ),
        file_sha256=upload.sha256,
        hmac_key=request.app[SETTINGS].hmac_key.encode(),
        categories=known,
        new_categories=_new_categories(rows, known),
    )


def _new_categories(rows: Sequence[ImportRow], known: dict[str, int]) -> dict[str, str]:
    """Categories the rows name that the business lacks: key -> first spelling."""
    new: dict[str, str] = {}
    for row in rows:
        if row.category_name is not None:
            key = name_key(row.category_name)
            if key not in known and key not in new:
                new[key] = row.category_name.strip()
    return new


def _category_id(text: str, known: dict[str, int]) -> int:
    """The form's category_id (one of the business's), else "Uncategorised"."""
    text = text.strip()
    if not text:
        return known[name_key(DEFAULT_CATEGORY)]
    category_id = whole_number(text)
    if category_id is None or category_id not in known.values():
        raise invalid("category_id", "The selected category id is invalid.")
    return category_id


def _body(
    plan: import_events.ImportPlan, rows: Sequence[ImportRow], asynchronous: bool
) -> tuple[int, bytes]:
    body = ImportBody(
        import_id=plan.import_id,
        category_id=plan.category_id,
        imported=len(rows),
        total_unpaid=to_number(sum(row.unpaid_minor for row in rows)),
        status_url=(
            STATUS_PATH.format(import_id=plan.import_id) if asynchronous else None
        ),
    )
    return (202 if asynchronous else 201), encoder.encode(body)


def _claim(request: web.Request, upload: Upload) -> IdempotencyClaim | None:
    """What the import means: the path, the file's content and the form fields (the
    multipart boundary changes per retry, so the raw body cannot be hashed)."""
    fields = sorted(upload.fields.items())
    meaning = [request.path, upload.sha256, *(f"{k}={v}" for k, v in fields)]
    return idempotency_claim(request, [part.encode() for part in meaning])


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

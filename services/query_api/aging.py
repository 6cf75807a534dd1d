"""Aged receivables: `GET /api/v3/clients/aging` and its workbook, `aging.xlsx`.

The parameters and the answer's shapes; the report itself is one query
(services/query_api/aging_report.py) and the workbook is written by aging_workbook.py.
Each report holds one of the business's slots for expensive work (fair use): over a
business with a million postings it reads them all.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from aiohttp import web
from asyncpg import Record

from services.http.edge import CLOCK, SETTINGS, business_of, whole_number
from services.http.fair_use import fair_use_of
from services.http.replica_reads import ReadTarget, on_replica
from services.query_api import aging_workbook, excel_export
from services.query_api import query_parameters as parameters
from services.query_api.aging_report import Report, read_report
from services.query_api.read_positions import answer, min_position
from shared import aging
from shared.errors import ValidationFailed
from shared.money import number_text

routes = web.RouteTableDef()
# The body is written as text, a line per client: 100,000 clients' AgingClient
# structs with Decimal figures took 0.46 s to build and encode, a template filled
# per client 0.63 s, these f-strings 0.30 s. The structs (shared/response_bodies.py)
# still describe it in the OpenAPI document, and the tests decode answers into
# AgingBody, strictly.
_name = msgspec.json.Encoder().encode


def _client(row: Record) -> str:
    """A report row (id, name, then the seven figures) as an AgingClient."""
    client_id, name, *figures = row
    current, days_1_30, days_31_60, days_61_90, over_90, total, unapplied = map(
        number_text, figures
    )
    return (
        f'{{"current":{current},"days_1_30":{days_1_30},"days_31_60":{days_31_60},'
        f'"days_61_90":{days_61_90},"days_over_90":{over_90},"total":{total},'
        f'"unapplied_credit":{unapplied},"id":{client_id},'
        f'"business_name":{_name(name).decode()}}}'
    )


def report_body(report: Report) -> bytes:
    totals = ",".join(
        f'"{name}":{number_text(getattr(report.totals, name))}'
        for name in aging.Buckets.__struct_fields__
    )
    head = (
        f'{{"as_of":"{report.as_of.isoformat()}","terms_days":{report.terms_days},'
        f'"totals":{{{totals}}},"clients":['
    )
    return f"{head}{','.join(map(_client, report.rows))}]}}".encode()


def _report_parameters(request: web.Request) -> Report:
    """`as_of` (a calendar date, default today UTC) and `terms_days` (0 to
    TERMS_DAYS_MAX, default 0), both checked before either is refused."""
    errors: dict[str, list[str]] = {}
    as_of = None
    try:
        as_of = parameters.optional_date(request, "as_of")
    except ValidationFailed as error:
        errors.update(error.errors)
    terms_text = request.query.get("terms_days", "").strip()
    terms_days = whole_number(terms_text) if terms_text else 0
    if terms_days is None or not 0 <= terms_days <= aging.TERMS_DAYS_MAX:
        errors["terms_days"] = [
            f"The terms days must be a whole number from 0 to {aging.TERMS_DAYS_MAX}."
        ]
    if errors:
        raise ValidationFailed(errors)
    assert terms_days is not None
    return Report(as_of or request.app[CLOCK].today(), terms_days)


async def _report(request: web.Request, workbook: Path | None = None) -> Report:
    """The report asked for, read (and written to `workbook`, if given) while it
    holds one of its business's slots for expensive work."""
    business_id = business_of(request).business_id
    category_id = parameters.optional_int(request, "category_id")
    report = _report_parameters(request)
    work_mem_mib = request.app[SETTINGS].report_work_mem_mib

    async def read(target: ReadTarget) -> None:
        await min_position(request, target)
        await read_report(target.pool, business_id, category_id, report, work_mem_mib)

    async with fair_use_of(request).expensive_work(business_id):
        await on_replica(request, read)
        if workbook is not None:
            await aging_workbook.write(workbook, report)
    return report


@routes.get("/api/v3/clients/aging")
async def aging_report(request: web.Request) -> web.Response:
    return answer(request, report_body(await _report(request)))


@routes.get("/api/v3/clients/aging.xlsx")
async def aging_workbook_route(request: web.Request) -> web.StreamResponse:
    path = excel_export.temporary_path()
    try:
        # Sent after the slot is given back: a client that reads slowly must not
        # hold its business's expensive work.
        report = await _report(request, workbook=path)
        filename = f"aging-{report.as_of.isoformat()}.xlsx"
        timeout_s = request.app[SETTINGS].http_send_timeout_s
        return await excel_export.send_file(request, path, filename, timeout_s)
    finally:
        path.unlink(missing_ok=True)

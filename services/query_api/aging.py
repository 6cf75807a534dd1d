"""Aged receivables: `GET /api/v3/clients/aging` and its workbook, `aging.xlsx`.

The parameters and the answer's shapes; the report itself is one query
(services/query_api/aging_report.py) and the workbook is written by aging_workbook.py.
Each report holds one of the business's slots for expensive work (fair use): over a
business with a million postings it reads them all.
"""

from __future__ import annotations

import msgspec
from aiohttp import web
from asyncpg import Record

from services.http.edge import CLOCK, POOL, SETTINGS, business_of, whole_number
from services.http.fair_use import fair_use_of
from services.query_api import aging_workbook, excel_export
from services.query_api import query_parameters as parameters
from services.query_api.aging_report import Report, read_report
from services.query_api.read_positions import answer, min_position
from shared import aging
from shared.errors import ValidationFailed
from shared.money import number_text

routes = web.RouteTableDef()
# The body is written as text, a line per client: 100,000 clients' AgingClient
# structs with Decimal figures took 0.46 s to build and encode, these 0.2 s. The
# structs (shared/response_bodies.py) still describe it in the OpenAPI document, and
# the tests decode every answer into AgingBody.
_FIGURES = aging.Buckets.__struct_fields__
_CLIENT = (
    "{{"
    + ",".join(f'"{name}":{{{i}}}' for i, name in enumerate(_FIGURES))
    + ',"id":{7},"business_name":{8}}}'
)
_name = msgspec.json.Encoder().encode


def _client(row: Record) -> str:
    """A report row (id, name, then the seven figures) as an AgingClient."""
    figures = [number_text(row[i]) for i in range(2, 9)]
    return _CLIENT.format(*figures, row[0], _name(row[1]).decode())


def report_body(report: Report) -> bytes:
    totals = ",".join(
        f'"{name}":{number_text(getattr(report.totals, name))}' for name in _FIGURES
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


async def _report(request: web.Request) -> Report:
    business_id = business_of(request).business_id
    category_id = parameters.optional_int(request, "category_id")
    report = _report_parameters(request)
    with fair_use_of(request).expensive_work(business_id):
        await min_position(request)
        work_mem_mib = request.app[SETTINGS].report_work_mem_mib
        return await read_report(
            request.app[POOL], business_id, category_id, report, work_mem_mib
        )


@routes.get("/api/v3/clients/aging")
async def aging_report(request: web.Request) -> web.Response:
    return answer(request, report_body(await _report(request)))


@routes.get("/api/v3/clients/aging.xlsx")
async def aging_workbook_route(request: web.Request) -> web.StreamResponse:
    report = await _report(request)
    path = excel_export.temporary_path()
    try:
        await aging_workbook.write(path, report)
        filename = f"aging-{report.as_of.isoformat()}.xlsx"
        timeout_s = request.app[SETTINGS].http_send_timeout_s
        return await excel_export.send_file(request, path, filename, timeout_s)
    finally:
        path.unlink(missing_ok=True)

"""The import route in-process, for large and asynchronous imports: 202 with a status
URL, the status through to done (for its own business only), the row bound, and the
events published to RabbitMQ in order."""

from __future__ import annotations

import io
from typing import Any

import aio_pika
import xlsxwriter
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from tests.integration.import_calls import get, send
from tests.integration.scenarios import wait_until
from tests.support.workbooks import HEADER, workbook


def many_rows(count: int) -> list[list[object]]:
    rows: list[list[object]] = [HEADER]
    rows.extend([f"Client {n}", None, None, None, "1.01"] for n in range(count))
    return rows


async def test_a_large_import_answers_202_and_reports_progress_until_done(
    service: TestClient, business: dict[str, Any]
) -> None:
    """6,000 rows commit before the answer, which is 202 with a status URL; the status
    reports every row committed, and rows visible until it says done."""
    raw = workbook("xlsxwriter", many_rows(6_000))
    status, body = await send(service, business, raw)
    assert status == 202, body
    assert (body["imported"], body["total_unpaid"]) == (6_000, 6060)
    url = body["status_url"]
    assert url == f"/api/v3/clients/imports/{body['import_id']}"
    report = await get(service, business, url)
    assert report["rows_committed"] == 6_000
    assert 0 <= report["rows_visible"] <= 6_000

    async def done() -> bool:
        report = await get(service, business, url)
        return bool(report["status"] == "done")

    await wait_until(done, "the import to be visible", timeout_s=60)
    assert await get(service, business, url) == {
        "import_id": body["import_id"],
        "status": "done",
        "rows_committed": 6_000,
        "rows_visible": 6_000,
    }
    summary = await get(service, business, "/api/v3/clients/summary")
    assert (summary["customer_count"], summary["total_balance"]) == (6_000, 6060)


async def test_prefer_respond_async_answers_202_with_a_status_url(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A small import sent with Prefer: respond-async answers 202 with its status URL
    right after the commit, and the status then reaches done."""
    raw = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "5"]])
    headers = {"Prefer": "respond-async"}
    status, body = await send(service, business, raw, headers=headers)
    assert (status, body["imported"]) == (202, 1)

    async def done() -> bool:
        report = await get(service, business, body["status_url"])
        return bool(report["status"] == "done" and report["rows_visible"] == 1)

    await wait_until(done, "the import to be visible")


async def test_another_business_cannot_see_an_import_status(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """The status of an import is a 404 for another business's key."""
    raw = workbook("openpyxl", [HEADER, ["Ama"]])
    status, body = await send(service, business, raw)
    other = await provision_business(environment.settings, "Other")
    response = await service.get(
        f"/api/v3/clients/imports/{body['import_id']}",
        headers={"Authorization": f"Bearer {other['api_key']}"},
    )
    assert response.status == 404


async def test_an_import_id_that_cannot_be_one_is_a_404(
    service: TestClient, business: dict[str, Any]
) -> None:
    """An import id holding a NUL byte (which PostgreSQL refuses in text) or one far
    too long is a 404 like any unknown id, never a 500."""
    for import_id in ("%00", "a%00b", "x" * 5000):
        response = await service.get(
            f"/api/v3/clients/imports/{import_id}", headers=business["headers"]
        )
        assert (response.status, await response.json()) == (
            404,
            {"message": "Import not found"},
        ), import_id


async def test_more_than_a_hundred_thousand_rows_are_refused(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A sheet of 100,001 data rows is a 422 and creates nothing."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADER)
    for row in range(1, 100_002):
        sheet.write_string(row, 0, "C")
    book.close()
    status, body = await send(service, business, buffer.getvalue())
    assert (status, body["errors"]) == (
        422,
        {"customers": ["The sheet has more than 100000 rows"]},
    )
    assert await get(service, business, "/api/v3/clients") == []


async def test_the_import_events_reach_rabbitmq_in_order(
    service: TestClient, business: dict[str, Any], environment: Any
) -> None:
    """A subscriber bound to the business receives clients.imported, then the client's
    created and opening posting events, each routed by business and type (after the
    business's own "Uncategorised" category.created, which is skipped)."""
    connection = await aio_pika.connect(environment.settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        exchange = await channel.get_exchange(environment.settings.exchange)
        await queue.bind(exchange, routing_key=f"{business['business_id']}.#")
        raw = workbook("xlsxwriter", [HEADER, ["Ama", None, None, None, "-5"]])
        status, _ = await send(service, business, raw)
        assert status == 201
        keys: list[str] = []

        async def received() -> bool:
            message = await queue.get(fail=False, no_ack=True)
            key = (message.routing_key or "") if message is not None else ""
            if key and not key.endswith(".category.created"):  # the business's own
                keys.append(key)
            return len(keys) == 3

        await wait_until(received, "three messages")
    finally:
        await connection.close()
    prefix = f"{business['business_id']}."
    assert keys == [
        prefix + "clients.imported",
        prefix + "client.created",
        prefix + "transaction.posted",
    ]

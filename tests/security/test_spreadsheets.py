"""Spreadsheets cannot burn the API's CPU or memory (issue 9, part 2): hostile and
broken .xlsx files sent through the real import route, and the bounded worker
processes that parse them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from services.command_api.spreadsheets.import_parsing import PARSE_POOL
from tests.integration.scenarios import wait_until
from tests.support import crafted_workbooks as crafted
from tests.support.environment import Environment, create_environment, drop_environment
from tests.support.service import http_client
from tests.support.workbooks import HEADER, form, workbook

IMPORT = "/api/v3/clients/import"
INVALID = "The given data was invalid."
TOO_COMPLEX = {"customers": ["The workbook is too large or too complex to read"]}
UNREADABLE = {"customers": ["The workbook could not be read"]}


async def send(
    client: TestClient, business: dict[str, Any], raw: bytes
) -> tuple[int, Any]:
    response = await client.post(IMPORT, data=form(raw), headers=business["headers"])
    return response.status, await response.json()


async def clients_of(client: TestClient, business: dict[str, Any]) -> Any:
    response = await client.get("/api/v3/clients", headers=business["headers"])
    assert response.status == 200
    return await response.json()


@asynccontextmanager
async def api_with(settings: Any, **changes: object) -> AsyncIterator[TestClient]:
    """Another API process on the same database, with some settings changed."""
    async with http_client(msgspec.structs.replace(settings, **changes)) as client:
        yield client


@pytest.fixture(scope="module")
def largest_file() -> bytes:
    """100,000 customers in a file of about 17 MiB (built once, ~10 s)."""
    return crafted.largest_allowed()


@pytest.fixture(scope="session")
async def quiet(servers: tuple[str, str]) -> AsyncIterator[Environment]:
    """A database where no relay or projector runs: a 100,000-row import commits
    there without setting the session's relay and projectors to work for minutes."""
    env = await create_environment(*servers, tag="sheets")
    yield env
    await drop_environment(env)


async def test_a_sheet_declaring_every_cell_is_answered_and_its_blank_rows_counted(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A 2 KB sheet declaring A1:XFD1048576, with one customer in its last row, had
    no answer after 35 s; the declared dimension is now ignored and the 1,048,574
    blank rows above the customer count against a bound: a 422 naming it."""
    status, body = await send(service, business, crafted.declared_dimension(1_048_576))
    assert (status, body) == (
        422,
        {
            "message": INVALID,
            "errors": {"customers": ["The sheet has more than 100000 blank rows"]},
        },
    )
    assert await clients_of(service, business) == []


async def test_a_sheet_declaring_every_cell_with_data_in_row_8000_is_imported(
    service: TestClient, business: dict[str, Any]
) -> None:
    """The same sheet with its customer in row 8,000 (8.8 s before) is imported: 201
    with one client, whose name reads back."""
    status, body = await send(service, business, crafted.declared_dimension(8_000))
    assert (status, body["imported"], body["total_unpaid"]) == (201, 1, 0)
    assert [c["business_name"] for c in await clients_of(service, business)] == ["Ama"]


async def test_a_million_shared_strings_are_refused_before_openpyxl_loads_them(
    service: TestClient, business: dict[str, Any]
) -> None:
    """A one-customer workbook whose shared-strings table holds 1,000,001 strings
    (openpyxl loaded them all, then imported) is a 422: the strings are counted while
    streaming the part, before openpyxl opens the file."""
    status, body = await send(service, business, crafted.shared_strings(1_000_001))
    assert (status, body) == (422, {"message": INVALID, "errors": TOO_COMPLEX})
    assert await clients_of(service, business) == []


@pytest.mark.parametrize(
    "build",
    [crafted.without_workbook_type, crafted.bad_crc, crafted.compression_method_9],
    ids=["content-types", "crc", "compression-9"],
)
async def test_a_workbook_broken_inside_is_a_422(
    service: TestClient, business: dict[str, Any], build: Any
) -> None:
    """A zip that claims to be a workbook but is broken inside answers 422: content
    types naming no workbook (a 503 with Retry-After before, as openpyxl's OSError
    passed for a connection error), a sheet whose CRC does not match and a sheet
    compressed with method 9 (both 500s before)."""
    status, body = await send(service, business, build())
    assert (status, body) == (422, {"message": INVALID, "errors": UNREADABLE})


async def test_a_formula_without_a_cached_value_is_refused_in_a_utf16_sheet(
    service: TestClient, business: dict[str, Any]
) -> None:
    """The uncached-formula check reads the sheet with an XML parser, so a UTF-16
    sheet (which a byte search for `<f` missed: imported as 0.00) is refused too."""
    status, body = await send(service, business, crafted.utf16_formula())
    assert (status, body) == (
        422,
        {
            "message": INVALID,
            "errors": {"row 2: Upaid Amount": ["is a formula without a cached value"]},
        },
    )


@pytest.mark.parametrize(
    "limit",
    [{"import_cpu_s": 1}, {"import_memory_mib": 100}, {"import_timeout_s": 0.5}],
    ids=["cpu", "memory", "wall-clock"],
)
async def test_a_parse_past_a_limit_is_a_422_and_the_next_import_works(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
    largest_file: bytes,
    limit: dict[str, object],
) -> None:
    """With one limit set below what 100,000 rows need (about 6 CPU seconds, 141 MB,
    10 s), that file is a 422 saying it is too large or too complex; the worker the
    kernel (or the wall clock) stopped is replaced, and a small file then imports."""
    async with api_with(environment.settings, **limit) as api:
        status, body = await send(api, business, largest_file)
        assert (status, body) == (422, {"message": INVALID, "errors": TOO_COMPLEX})
        assert api.server.app[PARSE_POOL].busy == 0
        small = workbook("openpyxl", [HEADER, ["Ama", None, None, None, "5"]])
        status, body = await send(api, business, small)
        assert (status, body["imported"], body["total_unpaid"]) == (201, 1, 5)


async def test_all_workers_busy_is_a_503_with_retry_after(
    environment: Environment,
    service: TestClient,
    business: dict[str, Any],
    largest_file: bytes,
) -> None:
    """With one worker, busy on a large file, another upload answers 503 with
    Retry-After at once (the service's capacity, not the caller's fault); once the
    worker is free, the same upload imports."""
    small = workbook("openpyxl", [HEADER, ["Ama"]])
    async with api_with(environment.settings, import_workers=1, import_cpu_s=3) as api:
        pool = api.server.app[PARSE_POOL]
        large = asyncio.ensure_future(send(api, business, largest_file))

        async def busy() -> bool:
            return pool.busy == 1

        await wait_until(busy, "the worker to take the large file", timeout_s=60)
        response = await api.post(IMPORT, data=form(small), headers=business["headers"])
        assert (response.status, response.headers["Retry-After"]) == (503, "5")
        busy_body = {"message": "Every import worker is busy; retry"}
        assert await response.json() == busy_body
        assert await large == (422, {"message": INVALID, "errors": TOO_COMPLEX})
        status, body = await send(api, business, small)
        assert (status, body["imported"]) == (201, 1)


async def test_the_documented_maximum_imports_through_the_workers(
    quiet: Environment, largest_file: bytes
) -> None:
    """100,000 customers in a 17 MiB file pass every bound with the default limits
    and get the normal answer for a large import: 202 with a status URL."""
    business = await provision_business(quiet.settings, f"Big {uuid.uuid4().hex[:8]}")
    business["headers"] = {"Authorization": f"Bearer {business['api_key']}"}
    assert len(largest_file) > 16 * 1024 * 1024
    async with http_client(quiet.settings) as api:
        status, body = await send(api, business, largest_file)
    assert status == 202, body
    assert body == {
        "import_id": body["import_id"],
        "category_id": body["category_id"],
        "imported": 100_000,
        "total_unpaid": 0,
        "status_url": f"/api/v3/clients/imports/{body['import_id']}",
    }

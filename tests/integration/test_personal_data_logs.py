"""Logs never carry personal fields: every logger of the in-process API, relay and
projectors, configured as LEDGER_LOG_LEVEL=DEBUG configures them (the broker clients
would log whole message bodies at DEBUG), while a client lives and is erased,
including requests refused for their personal fields."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from services.cli import logs
from tests.integration.test_personal_data_at_rest import _marked, _new_marker


@pytest.fixture
def every_log() -> Iterator[io.StringIO]:
    """Logging as `LEDGER_LOG_LEVEL=DEBUG LEDGER_LOG_FORMAT=json` configures it."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    wire = {name: logging.getLogger(name).level for name in logs.WIRE_LOGGERS}
    logs.configure("DEBUG", "json", stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, was in wire.items():
        logging.getLogger(name).setLevel(was)


async def test_no_log_line_carries_a_personal_field(
    service: TestClient, business: dict[str, Any], every_log: io.StringIO
) -> None:
    marker = _new_marker()
    headers = business["headers"]
    created = await service.post(
        "/api/v3/clients", json=_marked(marker), headers=headers
    )
    assert created.status == 201
    path = f"/api/v3/clients/{(await created.json())['id']}"
    texts = {"description": f"Goods {marker}", "reference": f"R-{marker}"}
    for body, status in (
        ({"type": "debit", "amount": "3.00", **texts}, 201),
        ({"type": "debit", "amount": "-3.00", **texts}, 422),  # refused
        ({"type": "debit", "amount": "3.00", "description": "x" * 256}, 422),
    ):
        answer = await service.post(f"{path}/transactions", json=body, headers=headers)
        assert answer.status == status
    refused = await service.post(
        path, json={"business_email": f"not an address {marker}"}, headers=headers
    )
    assert refused.status == 422
    assert (await service.post(f"{path}/erase", headers=headers)).status == 200
    again = await service.post(path, json={"first_name": marker}, headers=headers)
    assert again.status == 409

    logged = every_log.getvalue()
    # The client's business shows (the workers log it): the search can find.
    assert f'"business_id":{business["business_id"]}' in logged
    assert marker not in logged

"""What the monitor tests share: monitors and postings over the real HTTP API, and
the monitor.triggered events as the store holds them."""

from __future__ import annotations

import asyncpg
import msgspec

from services.monitor.follower import FOLLOWER
from shared import events as e
from shared.store.event_rows import SELECT_EVENTS, envelope_from_row
from tests.e2e.deadlines import wait_until
from tests.integration.reversal_calls import Headers, Service, post_json

CAUGHT_UP_DEADLINE_S = 30.0


async def new_monitor(service: Service, headers: Headers, **body: object) -> str:
    status, created = await post_json(service, "/api/v3/monitors", body, headers)
    assert status == 201, created
    monitor_id = created["id"]
    assert isinstance(monitor_id, str)
    return monitor_id


async def balance_monitor(
    service: Service,
    headers: Headers,
    client_id: int,
    condition: str,
    amount: object,
) -> str:
    """A monitor of one client's balance."""
    return await new_monitor(
        service,
        headers,
        scope="client",
        client_id=client_id,
        figure="balance",
        condition=condition,
        amount=amount,
    )


async def post(
    service: Service,
    headers: Headers,
    client_id: int,
    kind: str,
    entry: str,
    amount: str,
) -> int:
    """A posting (`kind`: transactions or deposits); its X-Ledger-Position."""
    response = await service.post(
        f"/api/v3/clients/{client_id}/{kind}",
        json={"type": entry, "amount": amount},
        headers=headers,
    )
    assert response.status == 201, await response.text()
    return int(response.headers["X-Ledger-Position"])


async def monitored_to(pool: asyncpg.Pool, position: int) -> None:
    """Wait until the monitor process has committed every event up to `position`."""

    async def passed() -> bool:
        cursor = await pool.fetchval(
            "SELECT position FROM relay_cursor WHERE relay = $1", FOLLOWER
        )
        return cursor is not None and cursor >= position

    await wait_until(passed, CAUGHT_UP_DEADLINE_S, f"monitor at {position}")


class Trigger(msgspec.Struct, frozen=True):
    client_id: int
    value_minor: int
    position: int


async def triggers(pool: asyncpg.Pool, monitor_id: str) -> list[Trigger]:
    """The monitor's monitor.triggered events, in stream order."""
    rows = await pool.fetch(
        SELECT_EVENTS + "WHERE stream_id = $1 AND type = 'monitor.triggered'"
        " ORDER BY version",
        e.monitor_stream(monitor_id),
    )
    found = []
    for row in rows:
        payload = envelope_from_row(row).payload
        assert isinstance(payload, e.MonitorTriggered)
        found.append(Trigger(payload.client_id, payload.value_minor, payload.position))
    return found

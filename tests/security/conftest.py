"""Fixtures for the security tests: the service in-process with chosen settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from services.cli.businesses import provision_business
from tests.support.environment import Environment
from tests.support.service import http_client

ServiceWith = Callable[..., AbstractAsyncContextManager[TestClient]]


@pytest.fixture
def service_with(environment: Environment) -> ServiceWith:
    """`async with service_with(key_requests_burst=2) as client:` runs the HTTP API
    on the session's database with those settings changed (no relay or projectors)."""

    @asynccontextmanager
    async def start(**changes: object) -> AsyncIterator[TestClient]:
        settings = msgspec.structs.replace(environment.settings, **changes)
        async with http_client(settings) as client:
            yield client

    return start


@pytest.fixture
async def other_business(environment: Environment) -> dict[str, object]:
    """A second fresh business, to show one tenant's limit leaves another served."""
    created = await provision_business(
        environment.settings, f"Other business {uuid.uuid4().hex[:8]}"
    )
    created["headers"] = {"Authorization": f"Bearer {created['api_key']}"}
    return created

"""The SDK's LedgerClient against the in-process service, and a small aiohttp proxy
between them where a test needs to see or break the traffic: it records every request
it receives and can, once each, forward a request and then drop the connection instead
of answering (the service committed, the client saw a failure), or answer 503 / 409
"in progress" itself.

The fixtures that use them (`api`, `proxy`, `proxied`) are in conftest.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient

from shared.client import RetryPolicy
from shared.client.errors import IN_PROGRESS_MESSAGE

FAST = RetryPolicy(attempts_max=4, backoff_first_s=0.01, backoff_max_s=0.05)
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}
ANSWER_HEADERS = {"content-length", "transfer-encoding", "content-encoding", "date"}


@dataclass
class Proxy:
    """Forwards to the service; `faults` are used up one per request, in order."""

    upstream: str
    session: aiohttp.ClientSession
    faults: list[str] = field(default_factory=list)
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = request.headers.get("Idempotency-Key")
        self.seen.append((request.method, request.path, key))
        fault = self.faults.pop(0) if self.faults else "forward"
        if fault == "unavailable":
            return web.json_response(
                {"message": "busy"}, status=503, headers={"Retry-After": "0"}
            )
        if fault == "in_progress":
            return web.json_response({"message": IN_PROGRESS_MESSAGE}, status=409)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS
        }
        async with self.session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            raw = await answer.read()
            kept = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ANSWER_HEADERS
            }
        if fault == "drop":  # the service answered; the client never sees it
            assert request.transport is not None
            request.transport.close()
        return web.Response(body=raw, status=answer.status, headers=kept)


def base_url(service: TestClient) -> str:
    return str(service.make_url("")).rstrip("/")

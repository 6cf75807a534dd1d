"""Where a webhook may be sent: checked when an endpoint is made, and again at every
connection (a name that resolved to a public address when the endpoint was made may
resolve to 127.0.0.1 later: DNS rebinding).

- When an endpoint is made (or its URL checked), its host is resolved and every
  address it resolves to must be public (shared/webhook_rules.address_problem), else
  a 422; a host that does not resolve is a 422 too.
- When the worker connects, PublicResolver resolves the host again and keeps only the
  public addresses (none left: the attempt fails), and a host that is an IP literal
  (which aiohttp connects to without asking a resolver) is checked before the request.

LEDGER_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=1 turns both checks off (tests, a receiver on
the same private network); production leaves it 0.

What a name resolved to is the operator's to know, not the tenant's: a refusal tells
the tenant only that the host resolves to a refused address (in the 422, in the
delivery log's `last_error`), and the addresses go to the worker's or API's log.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from shared.errors import invalid
from shared.webhook_rules import address_problem, literal_address, url_host

RESOLVE_TIMEOUT_S = 5.0
log = logging.getLogger("ledger.webhooks")


class AddressRefused(OSError):
    """Every address the host resolves to is refused (an attempt's error); its text
    names the host only, never the addresses."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} resolves to a refused address")


class PublicResolver(AbstractResolver):
    """aiohttp's threaded resolver, keeping only public addresses."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        kept = [item for item in found if address_problem(item["host"]) is None]
        if not kept:
            refused = ", ".join(sorted({item["host"] for item in found}))
            log.warning(
                "webhook host %s resolves to no public address: %s", host, refused
            )
            raise AddressRefused(host)
        return kept

    async def close(self) -> None:
        await self._resolver.close()


def literal_problem(url: str) -> str | None:
    """Why the URL's host, when it is an IP literal, may not be connected to."""
    address = literal_address(url_host(url))
    return None if address is None else address_problem(str(address))


async def check_url_addresses(url: str, port: int | None) -> None:
    """A 422 (on `url`) unless every address the URL's host resolves to is public."""
    host = url_host(url)
    literal = literal_address(host)
    if literal is not None:
        problem = address_problem(str(literal))
        if problem is not None:
            raise invalid("url", f"The URL's address is refused: {problem}.")
        return
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, ValueError):  # ValueError: UnicodeError (IDNA)
        raise invalid("url", f"The URL's host {host} does not resolve.") from None
    for info in infos:
        problem = address_problem(str(info[4][0]))
        if problem is not None:
            log.info("webhook URL refused: %s resolves to %s", host, problem)
            raise invalid("url", "The URL's host resolves to a refused address.")

"""Webhooks' pure rules: which event types an endpoint's patterns take, when a failed
delivery is tried again, and which URLs and addresses an endpoint may name.

The worker (services/webhooks/) and the API's routes both decide with these; nothing
here does I/O, so the unit tests check each rule directly.

Patterns. An endpoint lists event types or patterns. A pattern is `*` (every event),
an exact type (`transaction.posted`), or a dotted prefix ending in `.*`
(`client.*`), which takes every type whose name starts with that prefix and a dot,
however many segments follow (`client.*` takes `client.created` and would take a
future `client.note.added`). Nothing else is a wildcard. Patterns never list the
types, so a type added later (`monitor.triggered`) is matched the same way.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit

import msgspec

# A segment: lower-case letters, digits and underscores, starting with a letter.
_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")
PATTERN_LENGTH_MAX = 100
URL_LENGTH_MAX = 2048
# DNS's bounds on a name (RFC 1035): labels of 1 to 63 octets, 253 in all (without the
# root's trailing dot). Past them the resolver raises UnicodeError, not a lookup error.
HOST_LENGTH_MAX = 253
LABEL_LENGTH_MAX = 63
URL_SCHEMES = ("http", "https")
# Cloud metadata services, refused by name even where a rule below would let them
# through (each is also link-local or private today).
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is not a pattern (see the module docstring), or None."""
    if len(pattern) > PATTERN_LENGTH_MAX:
        return f"A pattern is at most {PATTERN_LENGTH_MAX} characters"
    if not _PATTERN.match(pattern):
        return (
            f"{pattern!r} is not an event type or pattern (`*`, `client.created`,"
            " `client.*`)"
        )
    return None


def matches(pattern: str, event_type: str) -> bool:
    """Whether `pattern` takes events of `event_type`."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])  # the prefix with its dot
    return pattern == event_type


def matches_any(patterns: Sequence[str], event_type: str) -> bool:
    return any(matches(pattern, event_type) for pattern in patterns)


def retry_delay_s(attempts: int, base_s: float, cap_s: float, jitter: float) -> float:
    """The wait after the `attempts`-th failed attempt (1 for the first): base_s
    doubled per attempt, at most cap_s, times `jitter` (0.5 to 1.0, random: retries of
    many deliveries spread out instead of arriving together)."""
    assert attempts >= 1 and 0.5 <= jitter <= 1.0
    exponent = min(attempts - 1, 62)  # 2**62 seconds exceeds every cap
    return min(base_s * 2.0**exponent, cap_s) * jitter


def next_attempt_at(
    attempts: int,
    first_attempt_at: dt.datetime,
    now: dt.datetime,
    settings: RetrySchedule,
    jitter: float,
) -> dt.datetime | None:
    """When to try a delivery again after its `attempts`-th failure; None when that
    would fall past the horizon after its first attempt (the delivery gives up)."""
    delay = retry_delay_s(attempts, settings.base_s, settings.cap_s, jitter)
    at = now + dt.timedelta(seconds=delay)
    if at > first_attempt_at + dt.timedelta(seconds=settings.horizon_s):
        return None
    return at


class RetrySchedule(msgspec.Struct, frozen=True):
    """The retry settings: LEDGER_WEBHOOK_RETRY_BASE_S, LEDGER_WEBHOOK_RETRY_CAP_S
    and LEDGER_WEBHOOK_RETRY_HORIZON_S."""

    base_s: float
    cap_s: float
    horizon_s: float


def url_problem(url: str) -> str | None:
    """Why `url` may not be an endpoint's URL (its shape only; its addresses are
    address_problem's), or None."""
    if len(url) > URL_LENGTH_MAX:
        return f"The URL is at most {URL_LENGTH_MAX} characters"
    if not url.isascii() or not url.isprintable() or " " in url:
        return "The URL must be printable ASCII without spaces (IDNA-encode the host)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError when out of range)
    except ValueError:
        return "The URL is not valid"
    if parts.scheme not in URL_SCHEMES:
        return "The URL must be http or https"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "The URL may not hold a user name or password"
    if not parts.hostname:
        return "The URL has no host"
    if (problem := host_problem(parts.hostname)) is not None:
        return problem
    if parts.fragment:
        return "The URL may not have a fragment"
    return None


def host_problem(host: str) -> str | None:
    """Why `host` (a URL's, brackets removed) is neither an IP literal nor a name
    DNS can look up, or None."""
    if literal_address(host) is not None:
        return None
    name = host.removesuffix(".")
    if len(name) > HOST_LENGTH_MAX:
        return f"The URL's host is at most {HOST_LENGTH_MAX} characters"
    if any(not 1 <= len(label) <= LABEL_LENGTH_MAX for label in name.split(".")):
        return (
            "Each dot-separated part of the URL's host is 1 to"
            f" {LABEL_LENGTH_MAX} characters"
        )
    try:
        name.encode("idna")
    except UnicodeError:
        return "The URL's host is not a valid host name"
    return None


def url_host(url: str) -> str:
    """The host of a URL url_problem accepted (brackets of an IPv6 literal removed)."""
    parts: SplitResult = urlsplit(url)
    assert parts.hostname
    return parts.hostname


def url_port(url: str) -> int:
    """The port a URL url_problem accepted connects to."""
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The host as an IP address when it is one (no resolution), else None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def address_problem(text: str) -> str | None:
    """Why an endpoint may not be reached at this address, or None. Only addresses
    on the public internet: not loopback, private, shared (CGNAT), link-local,
    site-local (fec0::/10, deprecated but still routed inside some networks),
    unspecified, multicast, reserved nor a cloud metadata address, and an IPv6 form
    that embeds an IPv4 address (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4,
    Teredo) is judged by the IPv4 address it carries."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return f"{text!r} is not an IP address"
    for embedded in _embedded_ipv4(address):
        problem = address_problem(str(embedded))
        if problem is not None:
            return problem
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    refused = (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or not address.is_global
    )
    if refused:
        return f"{address} is not a public address"
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    embedded = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        embedded.append(address.teredo[1])
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [item for item in embedded if item is not None]

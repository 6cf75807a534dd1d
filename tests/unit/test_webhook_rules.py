"""Webhooks' pure rules: patterns, the retry schedule, the signature, the addresses."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.client import signature_header, verify_signature
from shared.config import Settings, SettingsError, load_settings
from shared.webhook_rules import (
    RetrySchedule,
    address_problem,
    matches,
    next_attempt_at,
    pattern_problem,
    retry_delay_s,
    url_problem,
)


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("*", "transaction.posted", True),
        ("*", "monitor.triggered", True),
        ("client.*", "client.created", True),
        ("client.*", "client.note.added", True),
        ("client.*", "clients.created", False),
        ("client.*", "client", False),
        ("transaction.posted", "transaction.posted", True),
        ("transaction.posted", "transaction.reversed", False),
        ("monitor.*", "monitor.triggered", True),
    ],
)
def test_a_pattern_takes_exactly_the_types_its_rule_names(
    pattern: str, event_type: str, expected: bool
) -> None:
    """Given a pattern and a type never listed anywhere, matches follows the rule."""
    assert matches(pattern, event_type) is expected


@pytest.mark.parametrize(
    "pattern", ["", "Client.created", "client.*.x", "*.posted", "client.", "a b", "**"]
)
def test_a_malformed_pattern_is_refused(pattern: str) -> None:
    """Given anything but `*`, a dotted type, or a dotted prefix with `.*`, refused."""
    assert pattern_problem(pattern) is not None


def test_the_retry_wait_doubles_up_to_its_cap_and_jitter_scales_it() -> None:
    """Given base 5 s and a 60 s cap, the waits are 5, 10, 20, 40, 60, 60 s at full
    jitter, and half at the lowest jitter."""
    waits = [retry_delay_s(n, 5.0, 60.0, 1.0) for n in range(1, 7)]
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert retry_delay_s(3, 5.0, 60.0, 0.5) == 10.0
    assert retry_delay_s(500, 5.0, 60.0, 1.0) == 60.0


def test_a_delivery_gives_up_when_its_next_attempt_passes_the_horizon() -> None:
    """Given a 24 h horizon, an attempt 23 h 59 min after the first waits again, and
    one whose next wait would end past 24 h gives up (None)."""
    first = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    schedule = RetrySchedule(base_s=5.0, cap_s=3600.0, horizon_s=86400.0)
    early = first + dt.timedelta(minutes=1)
    assert next_attempt_at(1, first, early, schedule, 1.0) == early + dt.timedelta(
        seconds=5
    )
    late = first + dt.timedelta(hours=23, minutes=59)
    assert next_attempt_at(20, first, late, schedule, 1.0) is None


def test_a_signature_verifies_and_fails_when_anything_changes() -> None:
    """Given a header made for a body at t, verify_signature accepts it within the
    tolerance and refuses another body, secret, a stale t or a malformed header."""
    header = signature_header("whsec_abc", 1_900_000_000, b'{"a":1}')
    assert header.startswith("t=1900000000,v1=")
    assert len(header.split("v1=")[1]) == 64
    assert verify_signature("whsec_abc", header, b'{"a":1}', 1_900_000_100)
    assert not verify_signature("whsec_abc", header, b'{"a":2}', 1_900_000_100)
    assert not verify_signature("whsec_abd", header, b'{"a":1}', 1_900_000_100)
    assert not verify_signature("whsec_abc", header, b'{"a":1}', 1_900_000_301)
    assert not verify_signature("whsec_abc", "v1=zz", b'{"a":1}', 1_900_000_000)
    assert not verify_signature("whsec_abc", "t=x,v1=é", b'{"a":1}', 1_900_000_000)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.100.100.200",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "feff:ffff::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Given loopback, private, link-local, site-local, metadata, reserved and
    embedded forms, each is refused."""
    assert address_problem(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1"])
def test_public_addresses_are_allowed(address: str) -> None:
    """Given a public IPv4 and IPv6 address, neither is refused."""
    assert address_problem(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://user:pw@example.com/",
        "https://user@example.com/",
        "http:///nohost",
        "https://example.com/" + "a" * 2048,
        "https://exa mple.com/",
        "https://example.com:99999/",
        "https://" + "a" * 64 + ".example.com/",
        "https://a..example.com/",
        "https://" + ("a" * 63 + ".") * 4 + "com/",
    ],
)
def test_a_url_of_the_wrong_shape_is_refused(url: str) -> None:
    """Given another scheme, userinfo, no host, too long, spaces, a bad port, a host
    label of 64 characters or none, or a host over 253 characters."""
    assert url_problem(url) is not None


def test_a_plain_https_url_is_accepted() -> None:
    """Given an https URL with a port, path and query, no problem."""
    assert url_problem("https://hooks.example.com:8443/in?x=1") is None


def test_a_host_at_dns_bounds_is_accepted() -> None:
    """Given 63-character labels making 253 characters (and a root dot), and an
    IPv6 literal, no problem."""
    host = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(host) == 253
    assert url_problem(f"https://{host}./hook") is None
    assert url_problem("https://[2606:2800:220:1::1]:8443/hook") is None


@pytest.mark.parametrize("days", ["0", "3651"])
def test_a_retention_outside_one_to_3650_days_is_refused(days: str) -> None:
    """Given LEDGER_WEBHOOK_RETENTION_DAYS of 0 or 3651, the settings do not load
    (one line naming it); unset, the delivery log keeps 7 days."""
    with pytest.raises(SettingsError) as refused:
        load_settings({"LEDGER_WEBHOOK_RETENTION_DAYS": days})
    assert str(refused.value) == (
        f"LEDGER_WEBHOOK_RETENTION_DAYS={days} is out of range (1 to 3650 days)"
    )
    assert Settings().webhook_retention_days == 7


def test_the_openapi_document_describes_a_delivery_as_the_worker_sends_it() -> None:
    """OpenAPI 3.1's `webhooks` names the two headers the signature module defines,
    both required, a signature the verify function accepts matches its pattern, and
    the body is the envelope's schema."""
    import json
    import re

    from services.api_docs import openapi
    from shared.client import signature_header

    delivery = json.loads(openapi.rendered())["webhooks"]["ledgerEvent"]["post"]
    headers = {p["name"]: p for p in delivery["parameters"]}
    assert sorted(headers) == ["X-Ledger-Event-Id", "X-Ledger-Signature"]
    assert all(p["in"] == "header" and p["required"] for p in headers.values())
    pattern = headers["X-Ledger-Signature"]["schema"]["pattern"]
    assert re.fullmatch(pattern, signature_header("whsec_x", 1796606153, b"{}"))
    schema = delivery["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Envelope"}

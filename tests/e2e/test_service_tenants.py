"""The running service as tenants see it: every route needs a valid API key, keys are
made and revoked with the CLI, and one business never sees another's data."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import LedgerService, create_business, run_cli

UNAUTHENTICATED = {"message": "Unauthenticated."}


async def test_requests_without_a_valid_key_are_refused_with_401(
    http: aiohttp.ClientSession, api: Api
) -> None:
    """Proves every /api/v3 route needs `Authorization: Bearer <key>`, by calling reads
    and writes with no header, another scheme, an empty key and an unknown key."""
    client = await api.create_client(business_name="Guarded")
    routes = [
        ("GET", "/api/v3/clients"),
        ("GET", "/api/v3/clients/summary"),
        ("GET", "/api/v3/clients/categories"),
        ("GET", f"/api/v3/clients/{client['id']}"),
        ("GET", f"/api/v3/clients/{client['id']}/transactions"),
        ("POST", "/api/v3/clients"),
        ("POST", f"/api/v3/clients/{client['id']}/transactions"),
        ("DELETE", f"/api/v3/clients/{client['id']}"),
    ]
    headers = [
        {},
        {"Authorization": f"Basic {api.key}"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer lk_not-a-key-of-anyone"},
        {"Authorization": f"Bearer {api.key}x"},
    ]
    for method, path in routes:
        for header in headers:
            reply = await Api(http, None).request(
                method, path, headers=header, json_body={"business_name": "x"}
            )
            assert (reply.status, reply.body) == (401, UNAUTHENTICATED), (method, path)
    still = await api.get(f"/api/v3/clients/{client['id']}")
    assert still.body == client


async def test_a_revoked_key_is_refused_while_the_other_keys_still_work(
    ledger: LedgerService,
    http: aiohttp.ClientSession,
    api: Api,
    business: dict[str, Any],
) -> None:
    """Proves `ledger key create` adds a working key and `ledger key revoke` ends it,
    without touching the business's first key, by using each key before and after."""
    done = await run_cli(
        ledger, "key", "create", "--business", str(business["business_id"]), "--json"
    )
    assert done.returncode == 0, done.stderr
    second: dict[str, Any] = json.loads(done.stdout)
    assert list(second) == ["business_id", "key_id", "api_key"]
    assert second["business_id"] == business["business_id"]
    assert second["key_id"] != business["key_id"]
    second_api = Api(http, second["api_key"])
    created = await second_api.create_client(business_name="Made with the second key")
    assert (await api.get(f"/api/v3/clients/{created['id']}")).body == created

    revoked = await run_cli(ledger, "key", "revoke", str(second["key_id"]))
    assert revoked.returncode == 0, revoked.stderr
    refused = await second_api.get("/api/v3/clients")
    assert (refused.status, refused.body) == (401, UNAUTHENTICATED)
    assert (await api.get("/api/v3/clients")).body == [created]

    again = await run_cli(ledger, "key", "revoke", str(second["key_id"]))
    assert again.returncode == 1
    assert f"no active key {second['key_id']}" in again.stderr
    orphan = await run_cli(ledger, "key", "create", "--business", "999999999")
    assert orphan.returncode == 1
    assert "no such business" in orphan.stderr


async def test_another_businesss_client_answers_404_exactly_like_an_unknown_id(
    ledger: LedgerService, http: aiohttp.ClientSession, api: Api
) -> None:
    """Proves a key never sees another business's data, by addressing one business's
    client with every client route under another business's key and comparing each
    answer with the answer for an id that exists nowhere."""
    theirs = await api.create_client(business_name="Not yours")
    await api.post_transaction(theirs["id"], "debit", "10.00")
    other = await create_business(ledger)
    mine = Api(http, other["api_key"])
    unknown = 999_999_999

    def routes(client_id: int) -> list[tuple[str, str, object]]:
        base = f"/api/v3/clients/{client_id}"
        return [
            ("GET", base, None),
            ("POST", base, {"first_name": "Mallory"}),
            ("DELETE", base, None),
            ("POST", f"{base}/archive", {"archived": True}),
            ("POST", f"{base}/transactions", {"type": "credit", "amount": "10.00"}),
            ("GET", f"{base}/transactions", None),
            ("POST", f"{base}/deposits", {"type": "debit", "amount": "5.00"}),
            ("GET", f"{base}/deposits", None),
        ]

    for (method, path, body), (_, unknown_path, _) in zip(
        routes(theirs["id"]), routes(unknown), strict=True
    ):
        foreign = await mine.request(method, path, json_body=body)
        missing = await mine.request(method, unknown_path, json_body=body)
        assert foreign.status == missing.status == 404, (method, path)
        assert foreign.body == {"message": f"Client {theirs['id']} not found"}
        assert missing.body == {"message": f"Client {unknown} not found"}
        assert foreign.headers["Content-Type"] == missing.headers["Content-Type"]
    assert (await mine.get("/api/v3/clients")).body == []
    summary = await mine.get("/api/v3/clients/summary")
    assert summary.body["customer_count"] == 0
    unchanged = await api.get(f"/api/v3/clients/{theirs['id']}")
    assert unchanged.body["first_name"] == ""
    assert unchanged.body["archived"] is False
    assert unchanged.body["balance"] == "10.00"


async def test_a_category_of_another_business_cannot_be_used(
    ledger: LedgerService, http: aiohttp.ClientSession, api: Api
) -> None:
    """Proves category ids are per business too, by creating a client under another
    business's category id: 422 exactly as for an id that exists nowhere."""
    theirs = await api.create_category("Theirs")
    other = await create_business(ledger)
    mine = Api(http, other["api_key"])
    refused = await mine.post(
        "/api/v3/clients", {"business_name": "x", "category_id": theirs["id"]}
    )
    assert refused.status == 422
    assert refused.body == {
        "message": "The given data was invalid.",
        "errors": {"category_id": ["The selected category id is invalid."]},
    }
    assert (await mine.get("/api/v3/clients")).body == []

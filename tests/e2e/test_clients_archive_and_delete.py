"""Clients end to end, archive and delete: archiving sets or toggles, deleting is
refused while money is held and hides the client everywhere but its history; ids
that are not numbers are 404s."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import CLIENT_FIELDS, invalid

CANNOT_DELETE = "The client cannot be deleted while its balance or deposit is not zero"


async def test_archive_sets_with_a_boolean_and_toggles_without_one(api: Api) -> None:
    """Proves POST /clients/{id}/archive sets `archived` when the body says so and
    toggles it when the body has no such field (or no body at all), and that only a
    change moves updated_at, by walking one client through every form."""
    created = await api.create_client(business_name="Archivable")
    path = f"/api/v3/clients/{created['id']}/archive"
    toggled = await api.request("POST", path)
    assert toggled.status == 200
    assert list(toggled.body) == CLIENT_FIELDS
    assert toggled.body == {
        **created,
        "archived": True,
        "updated_at": toggled.body["updated_at"],
    }
    assert toggled.body["updated_at"] > created["updated_at"]
    back = await api.post(path, {})
    assert back.body["archived"] is False
    unchanged = await api.post(path, {"archived": False})
    assert unchanged.body == back.body
    set_true = await api.post(path, {"archived": True})
    assert set_true.body["archived"] is True
    again = await api.post(path, {"archived": True})
    assert again.body == set_true.body
    fetched = await api.get(f"/api/v3/clients/{created['id']}")
    assert fetched.body == set_true.body


async def test_archive_accepts_the_seeds_whole_client_object_as_body(api: Api) -> None:
    """Proves the seed's archive sample (a whole client object with "archived": true)
    archives the client and ignores every other field, by sending it verbatim."""
    created = await api.create_client(business_name="Seed archive")
    seed_body = {
        "id": 154186,
        "owner_id": 1,
        "business_id": 1,
        "first_name": None,
        "last_name": None,
        "phone_number": None,
        "business_name": "",
        "business_address": "",
        "business_phone": "",
        "business_location": None,
        "business_email": "",
        "created_at": "2024-11-04T16:24:13.000000Z",
        "updated_at": "2024-11-27T15:22:17.000000Z",
        "account_id": 1080949,
        "category": "Class of 2021",
        "category_id": 1224,
        "deposit_amount": 0,
        "deposit_account_id": None,
        "archived": True,
    }
    reply = await api.post(f"/api/v3/clients/{created['id']}/archive", seed_body)
    assert reply.status == 200
    assert reply.body == {
        **created,
        "archived": True,
        "updated_at": reply.body["updated_at"],
    }


async def test_archive_refuses_a_non_boolean(api: Api) -> None:
    """Proves `archived` must be a JSON boolean, by sending "yes", 1 and "true"."""
    created = await api.create_client(business_name="Strict")
    for value in ("yes", 1, "true"):
        reply = await api.post(
            f"/api/v3/clients/{created['id']}/archive", {"archived": value}
        )
        assert (reply.status, reply.body) == (
            422,
            invalid({"archived": ["The archived field must be true or false."]}),
        )
    assert (await api.get(f"/api/v3/clients/{created['id']}")).body == created


async def test_a_client_with_a_balance_or_a_deposit_cannot_be_deleted(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves DELETE is a 409 while the receivable balance or the deposit is not zero
    and succeeds once both are, by settling each in turn and deleting after each."""
    client = await api.create_client(business_name="Debtor")
    path = f"/api/v3/clients/{client['id']}"
    conflict = {"message": CANNOT_DELETE}
    await api.post_transaction(client["id"], "debit", "120.50")
    refused = await api.delete(path)
    assert (refused.status, refused.body) == (409, conflict)
    await api.post_transaction(client["id"], "credit", "120.50")
    await api.post_deposit(client["id"], "debit", "10.00")
    refused = await api.delete(path)
    assert (refused.status, refused.body) == (409, conflict)
    await api.post_deposit(client["id"], "credit", "10.00")
    deleted = await api.delete(path)
    assert deleted.status == 200
    assert deleted.body == {"message": "Client deleted", "id": client["id"]}
    assert list(deleted.body) == ["message", "id"]
    types = await admin_pool.fetch(
        "SELECT type FROM events WHERE stream_id = $1 ORDER BY version",
        f"client-{client['id']}",
    )
    assert [row["type"] for row in types] == [
        "client.created",
        "transaction.posted",
        "transaction.posted",
        "deposit.posted",
        "deposit.posted",
        "client.deleted",
    ]


async def test_a_deleted_client_is_gone_from_every_read_but_its_history_stays(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves a deleted client answers 404 everywhere, disappears from lists, category
    counts and the summary, and keeps its events, by deleting one of two clients."""
    category = await api.create_category("Leavers")
    kept = await api.create_client(business_name="Kept", category_id=category["id"])
    gone = await api.create_client(business_name="Gone", category_id=category["id"])
    path = f"/api/v3/clients/{gone['id']}"
    assert (await api.delete(path)).status == 200
    not_found = {"message": f"Client {gone['id']} not found"}
    for method, route, body in (
        ("GET", path, None),
        ("GET", f"{path}/transactions", None),
        ("GET", f"{path}/deposits", None),
        ("POST", path, {"first_name": "Lazarus"}),
        ("POST", f"{path}/archive", None),
        ("POST", f"{path}/transactions", {"type": "debit", "amount": 1}),
        ("POST", f"{path}/deposits", {"type": "debit", "amount": 1}),
        ("DELETE", path, None),
    ):
        reply = await api.request(method, route, json_body=body)
        assert (reply.status, reply.body) == (404, not_found), (method, route)
    assert (await api.get("/api/v3/clients")).body == [kept]
    assert (await api.get(f"/api/v3/clients?category_id={category['id']}")).body == [
        kept
    ]
    counts = {
        c["name"]: c["customer_count"]
        for c in (await api.get("/api/v3/clients/categories")).body
    }
    assert counts == {"Uncategorised": 0, "Leavers": 1}
    summary = await api.get("/api/v3/clients/summary")
    assert summary.body["customer_count"] == 1
    assert summary.body["unarchived_customers"] == 1
    stored = await admin_pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1", f"client-{gone['id']}"
    )
    assert stored == 2


async def test_path_ids_that_are_not_numbers_are_404s(api: Api) -> None:
    """Proves /clients/abc and its relatives answer 404 (not 422 or 500), by requesting
    non-numeric, signed, unicode-digit and overlong ids on every client route."""
    for client_id in ("abc", "-1", "1.0", "%C2%B2", "0x1", "1" * 19, "%20"):
        base = f"/api/v3/clients/{client_id}"
        for method, path in (
            ("GET", base),
            ("POST", base),
            ("DELETE", base),
            ("POST", f"{base}/archive"),
            ("GET", f"{base}/transactions"),
            ("POST", f"{base}/transactions"),
            ("GET", f"{base}/deposits"),
            ("POST", f"{base}/deposits"),
        ):
            reply = await api.request(method, path)
            assert (reply.status, reply.body) == (404, {"message": "Not Found"}), (
                method,
                path,
            )

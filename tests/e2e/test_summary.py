"""The summary end to end: exact sums and counts, filtered by category, in the seed's
shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import SUMMARY_FIELDS

ZERO_SUMMARY = {
    "total_deposits": 0,
    "customer_count": 0,
    "archived_customers": 0,
    "unarchived_customers": 0,
    "total_balance": 0,
}


async def summary(api: Api, query: str = "") -> dict[str, Any]:
    reply = await api.get(f"/api/v3/clients/summary{query}")
    assert reply.status == 200, reply.body
    assert list(reply.body) == SUMMARY_FIELDS
    return reply.body  # type: ignore[no-any-return]


async def test_a_new_business_has_a_zero_summary(api: Api) -> None:
    """Proves the summary is the seed's object even for no clients, by asking a
    business the CLI just made."""
    reply = await api.get("/api/v3/clients/summary")
    assert (reply.status, reply.body) == (200, ZERO_SUMMARY)
    assert list(reply.body) == SUMMARY_FIELDS


async def test_summary_sums_are_exact_where_floats_would_not_be(api: Api) -> None:
    """Proves total_balance and total_deposits are exact sums (0.1 + 0.2 is 0.3, not
    0.30000000000000004; the seed's 805187831.8899997 cannot happen), by summing
    balances and deposits whose float sums show artifacts and reading the raw JSON."""
    assert 0.1 + 0.2 != 0.3  # the artifact this test guards against
    for amount in ("0.1", "0.2"):
        client = await api.create_client(business_name=f"Cents {amount}")
        await api.post_transaction(client["id"], "debit", amount)
        await api.post_deposit(client["id"], "debit", amount)
    reply = await api.get("/api/v3/clients/summary")
    assert reply.body == {
        "total_deposits": Decimal("0.3"),
        "customer_count": 2,
        "archived_customers": 0,
        "unarchived_customers": 2,
        "total_balance": Decimal("0.3"),
    }
    assert reply.raw == (
        b'{"total_deposits":0.3,"customer_count":2,"archived_customers":0,'
        b'"unarchived_customers":2,"total_balance":0.3}'
    )


async def test_summary_adds_the_seeds_two_clients_exactly(api: Api) -> None:
    """Proves the summary of the seed's two sample clients is their exact sum, by
    posting their totals and deposits and summing by hand in Decimal."""
    seed = [
        ("Abas two", "43228120.29", "22876297.37", "50939"),
        ("Abdul Rashid Enterprise", "139511520.16", "124251818.54", "26602.6"),
    ]
    for name, debit, credit, deposit in seed:
        client = await api.create_client(business_name=name)
        await api.post_transaction(client["id"], "debit", debit)
        await api.post_transaction(client["id"], "credit", credit)
        await api.post_deposit(client["id"], "debit", deposit)
    listed = (await api.get("/api/v3/clients")).body
    assert [client["balance"] for client in listed] == [
        "20,351,822.92",
        "15,259,701.62",
    ]
    assert await summary(api) == {
        "total_deposits": Decimal("77541.6"),
        "customer_count": 2,
        "archived_customers": 0,
        "unarchived_customers": 2,
        "total_balance": Decimal("35611524.54"),
    }


async def test_archived_clients_count_and_deleted_ones_do_not(api: Api) -> None:
    """Proves archived clients count in archived_customers, customer_count and
    total_balance while deleted ones count nowhere, by archiving one client with a
    balance and deleting another."""
    active = await api.create_client(business_name="Active")
    await api.post_transaction(active["id"], "debit", "10.10")
    dormant = await api.create_client(business_name="Dormant")
    await api.post_transaction(dormant["id"], "debit", "5.05")
    await api.post_deposit(dormant["id"], "debit", "2")
    await api.post(f"/api/v3/clients/{dormant['id']}/archive", {"archived": True})
    leaver = await api.create_client(business_name="Leaver")
    assert (await api.delete(f"/api/v3/clients/{leaver['id']}")).status == 200
    assert await summary(api) == {
        "total_deposits": 2,
        "customer_count": 2,
        "archived_customers": 1,
        "unarchived_customers": 1,
        "total_balance": Decimal("15.15"),
    }


async def test_the_summary_filters_by_category(api: Api) -> None:
    """Proves summary?category_id= sums only that category's clients, an id of no
    category gives the zero summary and an empty value no filter, by splitting
    clients between two categories."""
    school = await api.create_category("Class of 2021")
    shop = await api.create_category("Shop")
    pupil = await api.create_client(business_name="Pupil", category_id=school["id"])
    await api.post_transaction(pupil["id"], "debit", "300")
    buyer = await api.create_client(business_name="Buyer", category_id=shop["id"])
    await api.post_transaction(buyer["id"], "debit", "0.99")
    await api.post(f"/api/v3/clients/{buyer['id']}/archive")
    assert await summary(api, f"?category_id={school['id']}") == {
        **ZERO_SUMMARY,
        "customer_count": 1,
        "unarchived_customers": 1,
        "total_balance": 300,
    }
    assert await summary(api, f"?category_id={shop['id']}") == {
        **ZERO_SUMMARY,
        "customer_count": 1,
        "archived_customers": 1,
        "total_balance": Decimal("0.99"),
    }
    assert await summary(api, "?category_id=999999999") == ZERO_SUMMARY
    both = {
        **ZERO_SUMMARY,
        "customer_count": 2,
        "archived_customers": 1,
        "unarchived_customers": 1,
        "total_balance": Decimal("300.99"),
    }
    assert await summary(api, "?category_id=") == both
    assert await summary(api, "?category_id") == both

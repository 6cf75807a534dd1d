"""Aged receivables over the real HTTP API (services/query_api/aging.py): buckets,
totals, filters and refusals, each figure exact."""

from __future__ import annotations

import datetime as dt

import msgspec

from shared.response_bodies import AgingBody
from tests.integration.reversal_calls import (
    Headers,
    Service,
    business_headers,
    get_json,
    new_posting,
    post_json,
    utc_today,
)
from tests.integration.scenarios import cents, decoded

TODAY = utc_today()
OWING = 'Owing "Ltd" \\ Adɛ́wálé'  # escaped in the hand-written JSON
ZEROS = {
    "current": 0,
    "days_1_30": 0,
    "days_31_60": 0,
    "days_61_90": 0,
    "days_over_90": 0,
    "total": 0,
    "unapplied_credit": 0,
}


def days_ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


async def new_client(
    service: Service, headers: Headers, name: str, category_id: int | None = None
) -> int:
    body: dict[str, object] = {"business_name": name}
    if category_id is not None:
        body["category_id"] = category_id
    status, created = await post_json(service, "/api/v3/clients", body, headers)
    assert status == 201, created
    client_id = created["id"]
    assert isinstance(client_id, int)
    return client_id


async def post(
    service: Service, client_id: int, headers: Headers, kind: str, amount: str, age: int
) -> int:
    """A transaction of `kind` dated `age` days ago (negative: in the future)."""
    body = {"type": kind, "amount": amount, "date": days_ago(age)}
    return await new_posting(service, client_id, "transactions", body, headers)


async def report(service: Service, headers: Headers, query: str = "") -> dict:
    body = await get_json(service, f"/api/v3/clients/aging{query}", headers)
    assert isinstance(body, dict)
    return body


def in_cents(figures: dict) -> dict[str, int]:
    return {name: cents(value) for name, value in figures.items() if name in ZEROS}


async def test_the_report_ages_each_client_s_open_debits_first_in_first_out(
    service: Service, business: dict[str, object]
) -> None:
    """Three clients with back-dated debits and credits: the oldest debits are
    settled first and the open parts land in the buckets of their age; a client in
    credit shows only unapplied credit; a client whose debits are all paid is left
    out; the totals are the sums; money is exact JSON numbers."""
    headers = business_headers(business)
    owing = await new_client(service, headers, OWING)
    for kind, amount, age in (
        ("debit", "100.10", 120),
        ("debit", "50.05", 75),
        ("debit", "20.00", 45),
        ("debit", "7.77", 10),
        ("debit", "3.00", 0),
        ("credit", "110.15", 5),
    ):
        await post(service, owing, headers, kind, amount, age)
    in_credit = await new_client(service, headers, "Prepaid Ltd")
    await post(service, in_credit, headers, "debit", "10.00", 200)
    await post(service, in_credit, headers, "credit", "25.50", 3)
    settled = await new_client(service, headers, "Settled Ltd")
    await post(service, settled, headers, "debit", "10.00", 40)
    await post(service, settled, headers, "credit", "10.00", 1)

    response = await service.get("/api/v3/clients/aging", headers=headers)
    raw = await response.read()
    body = decoded(raw)

    # The body is written as text (services/query_api/aging.py): it must still be
    # exactly what the OpenAPI document's AgingBody says.
    assert msgspec.json.decode(raw, type=AgingBody, strict=True).clients[0].id == owing
    assert body["as_of"] == TODAY.isoformat() and body["terms_days"] == 0
    assert [(c["id"], c["business_name"]) for c in body["clients"]] == [
        (owing, OWING),
        (in_credit, "Prepaid Ltd"),
    ]
    owing_figures = {
        **ZEROS,
        "current": 300,
        "days_1_30": 777,
        "days_31_60": 2_000,
        "days_61_90": 4_000,
        "total": 7_077,
    }
    assert in_cents(body["clients"][0]) == owing_figures
    assert in_cents(body["clients"][1]) == {**ZEROS, "unapplied_credit": 1_550}
    assert in_cents(body["totals"]) == {**owing_figures, "unapplied_credit": 1_550}
    assert str(body["clients"][0]["days_61_90"]) == "40"
    assert str(body["clients"][0]["days_1_30"]) == "7.77"


async def test_terms_and_an_earlier_as_of_move_the_buckets(
    service: Service, business: dict[str, object]
) -> None:
    """With 30 days' terms a 45-day-old debit is 15 days past due; as of 20 days ago
    the debits posted since are left out, and the credit dated after it too."""
    headers = business_headers(business)
    client_id = await new_client(service, headers, "Terms Ltd")
    await post(service, client_id, headers, "debit", "45.00", 45)
    await post(service, client_id, headers, "debit", "12.00", 25)
    await post(service, client_id, headers, "debit", "5.00", 2)
    await post(service, client_id, headers, "credit", "45.00", 1)

    with_terms = await report(service, headers, "?terms_days=30")
    earlier = await report(service, headers, f"?as_of={days_ago(20)}")

    assert with_terms["terms_days"] == 30
    assert in_cents(with_terms["clients"][0]) == {
        **ZEROS,
        "current": 1_700,
        "total": 1_700,
    }
    assert earlier["as_of"] == days_ago(20)
    assert in_cents(earlier["clients"][0]) == {
        **ZEROS,
        "days_1_30": 5_700,
        "total": 5_700,
    }


async def test_a_reversal_cancels_its_posting_and_does_not_settle_older_debits(
    service: Service, business: dict[str, object]
) -> None:
    """A 100-day-old debit and a 2-day-old one that is then reversed: the report
    shows the old debit still open over 90 days, not the reversal settling it; as of
    the day before the reversal, the reversed debit still counts."""
    headers = business_headers(business)
    client_id = await new_client(service, headers, "Reversed Ltd")
    await post(service, client_id, headers, "debit", "90.00", 100)
    reversed_id = await post(service, client_id, headers, "debit", "30.00", 2)
    status, answer = await post_json(
        service,
        f"/api/v3/clients/{client_id}/transactions/{reversed_id}/reverse",
        {},
        headers,
    )
    assert status == 201, answer

    body = await report(service, headers)
    before = await report(service, headers, f"?as_of={days_ago(1)}")

    assert in_cents(body["clients"][0]) == {
        **ZEROS,
        "days_over_90": 9_000,
        "total": 9_000,
    }
    assert in_cents(before["clients"][0]) == {
        **ZEROS,
        "days_1_30": 3_000,
        "days_over_90": 9_000,
        "total": 12_000,
    }


async def test_the_category_filter_keeps_its_clients_and_names_go_with_erasure(
    service: Service, business: dict[str, object]
) -> None:
    """Clients in two categories, one of them erased: `category_id` keeps its own;
    the erased client shows business_name null with its figures; a posting dated
    tomorrow is not yet in the report. (A deleted client cannot owe anything: its
    balance was zero to be deleted.)"""
    headers = business_headers(business)
    status, category = await post_json(
        service, "/api/v3/clients/category", {"name": "Wholesale"}, headers
    )
    assert status == 201, category
    wholesale = category["id"]
    assert isinstance(wholesale, int)
    kept = await new_client(service, headers, "Kept Ltd", wholesale)
    erased = await new_client(service, headers, "Erased Ltd", wholesale)
    other = await new_client(service, headers, "Other Ltd")
    for client_id in (kept, erased, other):
        await post(service, client_id, headers, "debit", "8.00", 35)
    await post(service, kept, headers, "debit", "1.00", -1)
    status, _ = await post_json(service, f"/api/v3/clients/{erased}/erase", {}, headers)
    assert status == 200

    body = await report(service, headers, f"?category_id={wholesale}")
    everyone = await report(service, headers)

    assert [(c["id"], c["business_name"]) for c in body["clients"]] == [
        (kept, "Kept Ltd"),
        (erased, None),
    ]
    assert in_cents(body["totals"]) == {**ZEROS, "days_31_60": 1_600, "total": 1_600}
    assert [c["id"] for c in everyone["clients"]] == [kept, erased, other]
    assert cents(everyone["totals"]["total"]) == 2_400


async def test_refusals_name_the_parameter_and_a_category_of_nobody_is_empty(
    service: Service, business: dict[str, object]
) -> None:
    """422 for an as_of that is not a calendar date, terms out of range or not a
    number, a category id that is not a number; an unknown category's report is
    empty with zero totals."""
    headers = business_headers(business)
    refusals = {
        "?as_of=2026-02-30": "as_of",
        "?as_of=2026-01-01T00:00:00Z": "as_of",
        "?terms_days=-1": "terms_days",
        "?terms_days=3651": "terms_days",
        "?terms_days=ten": "terms_days",
        "?category_id=abc": "category_id",
    }
    for query, field in refusals.items():
        response = await service.get(f"/api/v3/clients/aging{query}", headers=headers)
        assert response.status == 422, query
        assert list((await response.json())["errors"]) == [field], query

    body = await report(service, headers, "?category_id=987654321&terms_days=3650")

    assert body["clients"] == [] and in_cents(body["totals"]) == ZEROS

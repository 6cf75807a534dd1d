"""Aged receivables against the rule itself: random postings and reversals through
the real HTTP API, then each client's report line compared with shared/aging.py's
literal first-in-first-out over the client's events, its total with its statement's
closing balance, and the workbook with the JSON report."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from shared.aging import Buckets, Item, from_items
from tests.integration.reversal_calls import (
    Headers,
    Service,
    business_headers,
    get_json,
    post_json,
)
from tests.integration.scenarios import cents
from tests.integration.test_aging import ZEROS, days_ago, in_cents, new_client, post
from tests.support.spreadsheets import read_cells, sheet_numbers

TODAY = dt.datetime.now(dt.UTC).date()


async def _random_history(
    service: Service, client_id: int, headers: Headers, generator: random.Random
) -> None:
    """Up to 10 postings dated up to 150 days back (or tomorrow), some reversed."""
    posted: list[int] = []
    for _ in range(generator.randint(1, 10)):
        kind = generator.choice(("debit", "debit", "credit"))
        amount = f"{generator.randint(1, 40_000) / 100:.2f}"
        age = generator.choice((-1, 0, *range(1, 151)))
        posted.append(await post(service, client_id, headers, kind, amount, age))
        if generator.random() < 0.2:
            path = f"/api/v3/clients/{client_id}/transactions"
            status, _ = await post_json(
                service, f"{path}/{generator.choice(posted)}/reverse", {}, headers
            )
            assert status in (201, 409)  # 409: that one was reversed already


async def _items(service: Service, client_id: int, headers: Headers) -> list[Item]:
    """The client's transaction lines as its events (not a read model) hold them."""
    history = await get_json(service, f"/api/v3/clients/{client_id}/events", headers)
    assert isinstance(history, dict)
    items = []
    for event in history["data"]:
        payload = event["payload"]
        if payload["type"] in ("transaction.posted", "transaction.reversed"):
            items.append(
                Item(
                    payload["transaction_id"],
                    payload["entry_type"],
                    payload["amount_minor"],
                    dt.date.fromisoformat(payload["date"]),
                    payload.get("reversal_of"),
                )
            )
    return items


def _cents(buckets: Buckets) -> dict[str, int]:
    return {name: getattr(buckets, name) for name in ZEROS}


async def test_every_client_s_line_is_the_literal_rule_over_its_events(
    service: Service, business: dict[str, object]
) -> None:
    """12 clients with random back-dated debits, credits and reversals; for four
    report dates and three terms, each client's line equals from_items over its
    events (clients with nothing open left out), its total equals max(0, the
    statement's closing balance up to that date), and the totals are the sums."""
    headers = business_headers(business)
    generator = random.Random(14)
    clients = [await new_client(service, headers, f"C{n}") for n in range(12)]
    for client_id in clients:
        await _random_history(service, client_id, headers, generator)
    items = {c: await _items(service, c, headers) for c in clients}

    for age, terms_days in ((0, 0), (0, 30), (40, 7), (-1, 0), (100, 45)):
        as_of = TODAY - dt.timedelta(days=age)
        query = f"?as_of={as_of.isoformat()}&terms_days={terms_days}"
        body = await get_json(service, f"/api/v3/clients/aging{query}", headers)
        assert isinstance(body, dict)
        expected = {c: from_items(items[c], as_of, terms_days) for c in clients}
        shown = {c: b for c, b in expected.items() if not b.is_empty()}
        assert [line["id"] for line in body["clients"]] == list(shown), query
        for line in body["clients"]:
            assert in_cents(line) == _cents(shown[line["id"]]), (query, line)
            statement = await get_json(
                service,
                f"/api/v3/clients/{line['id']}/transactions?to={as_of}",
                headers,
            )
            assert isinstance(statement, dict)
            closing = cents(statement["closing_balance"])
            assert cents(line["total"]) == max(0, closing), (query, line)
        total = sum(shown.values(), Buckets())
        assert in_cents(body["totals"]) == _cents(total), query
    assert len(shown) >= 6  # the history is not trivially empty


async def test_the_workbook_holds_the_report_s_exact_figures(
    service: Service, business: dict[str, object]
) -> None:
    """The workbook of a report: its title row, header, one row per client with
    numeric money cells holding the exact decimal text, and the totals row."""
    headers = business_headers(business)
    first = await new_client(service, headers, "=SUM(A1)")
    second = await new_client(service, headers, "Second Ltd")
    await post(service, first, headers, "debit", "1234.56", 50)
    await post(service, first, headers, "debit", "0.07", 2)
    await post(service, second, headers, "credit", "10.10", 3)

    response = await service.get(
        f"/api/v3/clients/aging.xlsx?as_of={days_ago(0)}&terms_days=10",
        headers=headers,
    )
    raw = await response.read()

    assert response.status == 200
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="aging-{days_ago(0)}.xlsx"'
    )
    rows = [[cell.value for cell in row] for row in read_cells(raw)]
    assert rows[0][0] == f"As of {days_ago(0)}, terms 10 days"
    assert rows[1] == [
        "Client ID",
        "Name",
        "Current",
        "1-30 Days",
        "31-60 Days",
        "61-90 Days",
        "Over 90 Days",
        "Total",
        "Unapplied Credit",
    ]
    assert [row[:2] for row in rows[2:]] == [
        [first, "=SUM(A1)"],
        [second, "Second Ltd"],
        [None, "Total"],
    ]
    # Every number in the sheet, as written: ids, then each row's seven figures.
    assert sheet_numbers(raw) == [
        str(first),
        *("0.07", "0", "1234.56", "0", "0", "1234.63", "0"),
        str(second),
        *("0", "0", "0", "0", "0", "0", "10.1"),
        *("0.07", "0", "1234.56", "0", "0", "1234.63", "10.1"),
    ]
    assert Decimal(str(rows[2][7])) == Decimal("1234.63")

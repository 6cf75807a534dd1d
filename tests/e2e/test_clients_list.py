"""Clients end to end, the list: its filters, and its pages with X-Total-Count and
a Link header (seed shapes)."""

from __future__ import annotations

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import invalid


async def test_the_list_filters_by_category_and_archived_and_empty_means_no_filter(
    api: Api,
) -> None:
    """Proves the list's category_id and archived filters (alone and together), that an
    empty value is no filter and an id of no category an empty list, by listing three
    clients under every combination."""
    first, second = await api.create_category("A"), await api.create_category("B")
    one = await api.create_client(business_name="One", category_id=first["id"])
    two = await api.create_client(business_name="Two", category_id=second["id"])
    three = await api.create_client(business_name="Three", category_id=first["id"])
    three = (await api.post(f"/api/v3/clients/{three['id']}/archive")).body
    cases = {
        "": [one, two, three],
        "?category_id=&archived=": [one, two, three],
        f"?category_id={first['id']}": [one, three],
        f"?category_id={second['id']}": [two],
        "?archived=true": [three],
        "?archived=1": [three],
        "?archived=false": [one, two],
        "?archived=0": [one, two],
        f"?category_id={first['id']}&archived=false": [one],
        f"?category_id={first['id']}&archived=true": [three],
        "?category_id=999999999": [],
        "?id=1&unknown=parameter": [one, two, three],
    }
    for query, expected in cases.items():
        reply = await api.get(f"/api/v3/clients{query}")
        assert reply.status == 200, query
        assert reply.body == expected, query
        assert "X-Total-Count" not in reply.headers
        assert "Link" not in reply.headers


async def test_a_non_numeric_filter_is_a_422(api: Api) -> None:
    """Proves malformed filters are refused in the Laravel shape rather than ignored,
    by listing and summarising with category_id "abc" and archived "maybe"."""
    for path in ("/api/v3/clients", "/api/v3/clients/summary"):
        for value in ("abc", "CAT-456", "-1", "1.5", "1e3"):
            reply = await api.get(path, params={"category_id": value})
            assert reply.status == 422, (path, value)
            assert reply.body == invalid(
                {"category_id": ["The category id must be an integer."]}
            )
    reply = await api.get("/api/v3/clients", params={"archived": "maybe"})
    assert reply.status == 422
    assert reply.body == invalid(
        {"archived": ["The archived field must be true or false."]}
    )


async def test_pages_carry_x_total_count_and_a_link_header(api: Api) -> None:
    """Proves page/per_page cut the id-ordered list and announce the total and the
    neighbouring pages, by paging five clients two at a time."""
    clients = [await api.create_client(business_name=f"Client {n}") for n in range(5)]
    assert [client["id"] for client in clients] == sorted(
        client["id"] for client in clients
    )
    first = await api.get("/api/v3/clients?page=1&per_page=2")
    assert first.body == clients[0:2]
    assert first.headers["X-Total-Count"] == "5"
    assert first.headers["Link"] == (
        '</api/v3/clients?page=1&per_page=2>; rel="first", '
        '</api/v3/clients?page=2&per_page=2>; rel="next", '
        '</api/v3/clients?page=3&per_page=2>; rel="last"'
    )
    middle = await api.get("/api/v3/clients?page=2&per_page=2")
    assert middle.body == clients[2:4]
    assert middle.headers["X-Total-Count"] == "5"
    assert middle.headers["Link"] == (
        '</api/v3/clients?page=1&per_page=2>; rel="first", '
        '</api/v3/clients?page=1&per_page=2>; rel="prev", '
        '</api/v3/clients?page=3&per_page=2>; rel="next", '
        '</api/v3/clients?page=3&per_page=2>; rel="last"'
    )
    last = await api.get("/api/v3/clients?page=3&per_page=2")
    assert last.body == clients[4:5]
    assert last.headers["Link"] == (
        '</api/v3/clients?page=1&per_page=2>; rel="first", '
        '</api/v3/clients?page=2&per_page=2>; rel="prev", '
        '</api/v3/clients?page=3&per_page=2>; rel="last"'
    )
    beyond = await api.get("/api/v3/clients?page=4&per_page=2")
    assert (beyond.body, beyond.headers["X-Total-Count"]) == ([], "5")
    default_size = await api.get("/api/v3/clients?page=1")
    assert default_size.body == clients
    assert default_size.headers["X-Total-Count"] == "5"


async def test_pages_count_only_the_filtered_clients(api: Api) -> None:
    """Proves X-Total-Count and the Link header follow the filters, by paging the
    archived clients of a business that also has unarchived ones."""
    clients = [await api.create_client(business_name=f"Client {n}") for n in range(4)]
    archived = [
        (await api.post(f"/api/v3/clients/{client['id']}/archive")).body
        for client in clients[1:]
    ]
    reply = await api.get("/api/v3/clients?archived=true&page=2&per_page=2")
    assert reply.body == archived[2:]
    assert reply.headers["X-Total-Count"] == "3"
    assert reply.headers["Link"] == (
        '</api/v3/clients?archived=true&page=1&per_page=2>; rel="first", '
        '</api/v3/clients?archived=true&page=1&per_page=2>; rel="prev", '
        '</api/v3/clients?archived=true&page=2&per_page=2>; rel="last"'
    )


async def test_page_and_per_page_out_of_range_are_422s(api: Api) -> None:
    """Proves a page below 1 and a page size outside 1 to 1,000 are refused (never
    silently replaced by a default), by listing with each bad value."""
    per_page_error = invalid({"per_page": ["The per page must be between 1 and 1000."]})
    page_error = invalid({"page": ["The page must be at least 1 and within range."]})
    for query, expected in (
        ("per_page=0", per_page_error),
        ("per_page=1001", per_page_error),
        ("page=0", page_error),
        ("page=0&per_page=10", page_error),
        ("page=99999999999999999&per_page=1000", page_error),
    ):
        reply = await api.get(f"/api/v3/clients?{query}")
        assert (reply.status, reply.body) == (422, expected), query
    reply = await api.get("/api/v3/clients?page=x")
    assert reply.body == invalid({"page": ["The page must be an integer."]})
    allowed = await api.get("/api/v3/clients?per_page=1000")
    assert (allowed.status, allowed.headers["X-Total-Count"]) == (200, "0")

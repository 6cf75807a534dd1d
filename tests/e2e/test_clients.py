"""Clients end to end: create, get, list, update, archive, delete (seed shapes)."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from shared.response_bodies import timestamp
from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import CLIENT_FIELDS, TIMESTAMP_PATTERN, invalid
from tests.e2e.supervisor import event_count, last_position

SEED_REQUEST = {
    "business_name": "Tech Solutions Inc.",
    "business_address": "123 Tech Street, Silicon Valley, CA",
    "business_phone": "+1-800-555-0199",
    "business_email": "contact@techsolutions.com",
    "first_name": "John",
    "last_name": "Doe",
    "phone_number": "+1-800-555-0100",
}
CANNOT_DELETE = "The client cannot be deleted while its balance or deposit is not zero"


async def uncategorised(api: Api) -> dict[str, Any]:
    [category] = [
        category
        for category in (await api.get("/api/v3/clients/categories")).body
        if category["name"] == "Uncategorised"
    ]
    return category


async def test_a_client_created_with_only_business_name_has_the_seeds_shape(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves only business_name is required and the 201 body is the seed's create
    response field for field, in order, with X-Ledger-Position its event's position in
    the store, by creating "Echis Viper" with nothing else."""
    reply = await api.post("/api/v3/clients", {"business_name": "Echis Viper"})
    assert reply.status == 201
    body = reply.body
    assert list(body) == CLIENT_FIELDS
    written = await last_position(admin_pool, business["business_id"])
    assert int(reply.headers["X-Ledger-Position"]) == written
    assert re.fullmatch(TIMESTAMP_PATTERN, body["created_at"])
    # The ids and the time are the client.created event's, as the store holds it.
    stored = await admin_pool.fetchrow(
        "SELECT type, (payload->>'client_id')::bigint AS client_id,"
        " (payload->>'account_id')::bigint AS account_id, recorded_at"
        " FROM events WHERE position = $1",
        written,
    )
    assert stored["type"] == "client.created"
    assert stored["account_id"] != stored["client_id"]
    default = await uncategorised(api)
    assert body == {
        "id": stored["client_id"],
        "owner_id": business["owner_id"],
        "business_id": business["business_id"],
        "first_name": "",
        "last_name": "",
        "phone_number": "",
        "business_name": "Echis Viper",
        "business_address": "",
        "business_phone": "",
        "business_location": "",
        "business_email": "",
        "created_at": timestamp(stored["recorded_at"]),
        "updated_at": timestamp(stored["recorded_at"]),
        "account_id": stored["account_id"],
        "category": "Uncategorised",
        "category_id": default["id"],
        "deposit_amount": 0,
        "deposit_account_id": None,
        "archived": False,
        "transactions": [],
        "unformated_balance": 0,
        "balance": "0.00",
        "total_debit": "0.00",
        "total_credit": "0.00",
    }
    assert b'"deposit_amount":0,' in reply.raw
    assert b'"unformated_balance":0,' in reply.raw
    fetched = await api.get(f"/api/v3/clients/{body['id']}")
    assert (fetched.status, fetched.body) == (200, body)
    assert fetched.headers["ETag"] == '"1"'


async def test_the_seeds_sample_create_request_works_with_a_real_category_id(
    api: Api, business: dict[str, Any]
) -> None:
    """Proves the seed's sample request creates the client it describes once its
    category_id names a real category, by sending it with "Class of 2021"'s id."""
    category = await api.create_category("Class of 2021")
    reply = await api.post(
        "/api/v3/clients", {**SEED_REQUEST, "category_id": category["id"]}
    )
    assert reply.status == 201
    body = reply.body
    assert list(body) == CLIENT_FIELDS
    assert {name: body[name] for name in SEED_REQUEST} == SEED_REQUEST
    assert (body["category"], body["category_id"]) == ("Class of 2021", category["id"])
    assert (body["owner_id"], body["business_id"]) == (
        business["owner_id"],
        business["business_id"],
    )
    assert body["business_location"] == ""


async def test_the_seeds_category_id_cat_456_is_refused_and_writes_nothing(
    api: Api, business: dict[str, Any], admin_pool: asyncpg.Pool
) -> None:
    """Proves the seed's sample `category_id: "CAT-456"` (and any id of no category)
    is a 422 on category_id that appends no event, by counting the business's events."""
    before = await event_count(admin_pool, business["business_id"])
    for category_id in ("CAT-456", 999_999_999, "999999999", -1, 0, 1.5, True, [1]):
        reply = await api.post(
            "/api/v3/clients", {**SEED_REQUEST, "category_id": category_id}
        )
        assert reply.status == 422, category_id
        assert reply.body == invalid(
            {"category_id": ["The selected category id is invalid."]}
        )
    assert await event_count(admin_pool, business["business_id"]) == before
    assert (await api.get("/api/v3/clients")).body == []


async def test_category_id_may_be_an_integer_or_a_numeric_string(api: Api) -> None:
    """Proves both spellings of a category id pick the category, and null or "" means
    "Uncategorised", by creating four clients and reading their category back."""
    category = await api.create_category("JHS 3 - 2022")
    default = await uncategorised(api)
    for given, expected in (
        (category["id"], category),
        (str(category["id"]), category),
        (f" {category['id']} ", category),
        (None, default),
        ("", default),
    ):
        client = await api.create_client(business_name="Pupil", category_id=given)
        assert (client["category_id"], client["category"]) == (
            expected["id"],
            expected["name"],
        ), given


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


async def test_an_update_changes_only_the_given_fields_and_moves_updated_at(
    api: Api,
) -> None:
    """Proves POST /clients/{id} changes exactly the fields sent, moves updated_at but
    not created_at and bumps the ETag, by updating one field of a full client."""
    created = await api.create_client(**SEED_REQUEST)
    reply = await api.post(
        f"/api/v3/clients/{created['id']}",
        {"first_name": "Jane", "business_location": "Kumasi", "ignored": "field"},
    )
    assert reply.status == 200
    updated = reply.body
    assert list(updated) == CLIENT_FIELDS
    assert updated == {
        **created,
        "first_name": "Jane",
        "business_location": "Kumasi",
        "updated_at": updated["updated_at"],
    }
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] > created["updated_at"]
    fetched = await api.get(f"/api/v3/clients/{created['id']}")
    assert fetched.body == updated
    assert fetched.headers["ETag"] == '"2"'
    assert (await api.get("/api/v3/clients")).body == [updated]


async def test_an_update_may_clear_a_field_move_category_and_trims_business_name(
    api: Api,
) -> None:
    """Proves null clears an optional string, business_name is trimmed, and a new
    category_id moves the client and both categories' counts, by one update."""
    category = await api.create_category("Class of 2021")
    created = await api.create_client(**SEED_REQUEST)
    reply = await api.post(
        f"/api/v3/clients/{created['id']}",
        {
            "last_name": None,
            "business_name": "  Echis Viper  ",
            "category_id": str(category["id"]),
        },
    )
    assert reply.status == 200
    assert reply.body == {
        **created,
        "last_name": "",
        "business_name": "Echis Viper",
        "category": "Class of 2021",
        "category_id": category["id"],
        "updated_at": reply.body["updated_at"],
    }
    counts = {
        c["name"]: c["customer_count"]
        for c in (await api.get("/api/v3/clients/categories")).body
    }
    assert counts == {"Uncategorised": 0, "Class of 2021": 1}


async def test_an_update_refuses_invalid_fields_and_changes_nothing(api: Api) -> None:
    """Proves an update validates like a create (business_name may not be blanked, the
    category must exist, email must be valid), by sending bad updates and re-reading."""
    created = await api.create_client(**SEED_REQUEST)
    path = f"/api/v3/clients/{created['id']}"
    for body, errors in (
        (
            {"business_name": "   "},
            {"business_name": ["The business name field is required."]},
        ),
        (
            {"business_name": None},
            {"business_name": ["The business name field is required."]},
        ),
        (
            {"category_id": 999_999_999},
            {"category_id": ["The selected category id is invalid."]},
        ),
        (
            {"category_id": "CAT-456"},
            {"category_id": ["The selected category id is invalid."]},
        ),
        (
            {"business_email": "nope"},
            {"business_email": ["The business email must be a valid email address."]},
        ),
        ({"first_name": 7}, {"first_name": ["The first name must be a string."]}),
    ):
        reply = await api.post(path, body)
        assert (reply.status, reply.body) == (422, invalid(errors)), body
    assert (await api.get(path)).body == created


async def test_an_empty_update_answers_the_client_unchanged(api: Api) -> None:
    """Proves an update that names no field writes nothing (updated_at and the ETag
    stay), by posting {} and an empty body to a client."""
    created = await api.create_client(**SEED_REQUEST)
    path = f"/api/v3/clients/{created['id']}"
    for reply in (await api.post(path, {}), await api.request("POST", path)):
        assert (reply.status, reply.body) == (200, created)
    fetched = await api.get(path)
    assert (fetched.body, fetched.headers["ETag"]) == (created, '"1"')


async def test_if_match_guards_an_update_with_the_etag(api: Api) -> None:
    """Proves GET's ETag is the stream version and an update whose If-Match differs is
    a 412 that writes nothing, by updating with stale, malformed and current tags."""
    created = await api.create_client(business_name="Versioned")
    path = f"/api/v3/clients/{created['id']}"
    etag = (await api.get(path)).headers["ETag"]
    assert etag == '"1"'
    stale = await api.post(path, {"first_name": "A"}, headers={"If-Match": '"7"'})
    assert (stale.status, stale.body) == (
        412,
        {"message": "The client was changed since the given ETag"},
    )
    garbled = await api.post(
        path, {"first_name": "A"}, headers={"If-Match": "yesterday"}
    )
    assert (garbled.status, garbled.body) == (
        412,
        {"message": "The If-Match header does not match the client's ETag"},
    )
    assert (await api.get(path)).body == created
    current = await api.post(path, {"first_name": "A"}, headers={"If-Match": etag})
    assert current.status == 200
    assert (await api.get(path)).headers["ETag"] == '"2"'
    replayed = await api.post(path, {"first_name": "B"}, headers={"If-Match": etag})
    assert replayed.status == 412
    weak = await api.post(path, {"first_name": "B"}, headers={"If-Match": 'W/"2"'})
    assert (weak.status, weak.body["first_name"]) == (200, "B")
    anything = await api.post(path, {"first_name": "C"}, headers={"If-Match": "*"})
    assert (anything.status, anything.body["first_name"]) == (200, "C")


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

"""Clients end to end, updates: only the fields sent change, invalid ones change
nothing, and If-Match guards an update with the ETag."""

from __future__ import annotations

from tests.e2e.ledger_api import Api
from tests.e2e.seed_shapes import CLIENT_FIELDS, SEED_REQUEST, invalid


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

"""`GET /api/v3/clients?search=` through the real HTTP API and PostgreSQL: a search
with the other filters and pages, the clients it never finds (erased, deleted), and
the searches it refuses."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.e2e.seed_shapes import invalid
from tests.integration.search_calls import Searcher, Service


@pytest.fixture
def searcher(service: Service, business: dict[str, Any]) -> Searcher:
    return Searcher(service, business)


async def test_a_search_combines_with_category_archived_and_pages(
    searcher: Searcher,
) -> None:
    """Proves the search is one more filter: with category_id and archived it keeps
    only what all of them match, and its pages count and link only those, by paging
    six Adjoas of two categories (one archived) among other clients."""
    first = (await searcher.post("/api/v3/clients/category", {"name": "Fish"}))["id"]
    second = (await searcher.post("/api/v3/clients/category", {"name": "Yam"}))["id"]
    adjoas = [
        await searcher.client(
            first_name="Adjoa", last_name=f"N{n}", category_id=(first, second)[n % 2]
        )
        for n in range(6)
    ]
    await searcher.client(first_name="Akua", category_id=first)
    await searcher.post(f"/api/v3/clients/{adjoas[2]}/archive", {}, 200)
    assert await searcher.found("adjoa") == adjoas
    assert await searcher.found("ADJOA", category_id=str(second)) == adjoas[1::2]
    in_first = [adjoas[0], adjoas[4]]
    assert await searcher.found("adjoa", category_id=str(first), archived="0") == (
        in_first
    )
    assert await searcher.found("adjoa", archived="true") == [adjoas[2]]

    status, body, headers = await searcher.listed(
        search="adjoa", archived="false", page="2", per_page="2"
    )
    assert status == 200
    assert [client["id"] for client in body] == [adjoas[3], adjoas[4]]
    assert headers["X-Total-Count"] == "5"
    link = "/api/v3/clients?search=adjoa&archived=false&page={}&per_page=2"
    assert headers["Link"] == (
        f'<{link.format(1)}>; rel="first", <{link.format(1)}>; rel="prev", '
        f'<{link.format(3)}>; rel="next", <{link.format(3)}>; rel="last"'
    )
    following = await searcher.service.get(link.format(3), headers=searcher.headers)
    assert [client["id"] for client in await following.json()] == [adjoas[5]]


async def test_the_link_header_carries_a_search_written_with_any_characters(
    searcher: Searcher,
) -> None:
    """Proves every link of a searched page carries the same search, encoded, by
    following next from page 1 of a search with an accent, a plus and a space."""
    ids = [await searcher.client(first_name=f"Émile+Fils {n}") for n in range(3)]
    await searcher.client(first_name="Emile Fils")
    status, body, headers = await searcher.listed(search="émile+fils ", per_page="2")
    assert (status, [client["id"] for client in body]) == (200, ids[:2])
    assert headers["X-Total-Count"] == "3"
    link = "/api/v3/clients?search=%C3%A9mile%2Bfils+&per_page=2&page={}"
    assert headers["Link"] == (
        f'<{link.format(1)}>; rel="first", <{link.format(2)}>; rel="next", '
        f'<{link.format(2)}>; rel="last"'
    )
    following = await searcher.service.get(link.format(2), headers=searcher.headers)
    assert [client["id"] for client in await following.json()] == ids[2:]


async def test_an_erased_or_deleted_client_is_never_found_by_its_old_data(
    searcher: Searcher, admin: asyncpg.Connection
) -> None:
    """Proves erasure takes a client out of search (its folded text is computed from
    the fields erasure nulls) while it stays listed, and deletion takes it out
    altogether, by searching each one's name, phone and e-mail before and after."""
    fields = {"last_name": "Quartey", "phone_number": "024 777 1234"}
    erased = await searcher.client(
        first_name="Naa", business_email="naa@quartey.example", **fields
    )
    deleted = await searcher.client(
        first_name="Nii", business_email="nii@quartey.example", **fields
    )
    kept = await searcher.client(first_name="Dede", last_name="Quartey")
    queries = ("quartey", "0247771234", "naa@", "nii@")
    before = [await searcher.found(query) for query in queries]
    assert before == [[erased, deleted, kept], [erased, deleted], [erased], [deleted]]
    await searcher.post(f"/api/v3/clients/{erased}/erase", {}, 200)
    answer = await searcher.service.delete(
        f"/api/v3/clients/{deleted}", headers=searcher.headers
    )
    assert answer.status == 200, await answer.text()
    after = [await searcher.found(query) for query in queries]
    assert after == [[kept], [], [], []]
    _, listed, _ = await searcher.listed()
    assert [client["id"] for client in listed] == [erased, kept]
    # Nothing of the person is left in the columns a search reads.
    row = await admin.fetchrow(
        "SELECT search_text, search_phones FROM rm_clients WHERE client_id = $1",
        erased,
    )
    assert tuple(row or ()) == (" \n\n", "\n")


async def test_a_blank_search_is_no_filter_and_surrounding_spaces_are_trimmed(
    searcher: Searcher,
) -> None:
    """Proves `search` reads as the other parameters do, by listing with an empty,
    a blank and a padded search."""
    ids = [await searcher.client(first_name=name) for name in ("Kojo", "Yaa")]
    for blank in ("", "   "):
        status, body, _ = await searcher.listed(search=blank)
        assert (status, [client["id"] for client in body]) == (200, ids), blank
    assert await searcher.found("  yaa  ") == [ids[1]]


async def test_a_search_too_long_or_with_control_characters_is_a_422(
    searcher: Searcher,
) -> None:
    """Proves the bound (100 characters as sent) and the refusal of control
    characters (NUL among them) are Laravel-shaped 422s, never a 500, by listing
    with each, beside the longest search allowed."""
    await searcher.client(first_name="Kojo")
    too_long = invalid(
        {"search": ["The search may not be greater than 100 characters."]}
    )
    control = invalid({"search": ["The search may not contain control characters."]})
    cases = {
        "k" * 101: too_long,
        " " * 98 + "kojo": too_long,
        "é" * 101: too_long,
        "\x00": control,
        "ko\x00jo": control,
        "ko\tjo": control,
        "kojo\n": control,
        "ko\x1bjo": control,
        "ko\x7fjo": control,
        "ko\x85jo": control,
        "\t": control,  # blank, but refused before it could be taken for no search
        " " * 101: too_long,
    }
    for search, expected in cases.items():
        status, body, _ = await searcher.listed(search=search)
        assert (status, body) == (422, expected), repr(search)
    assert await searcher.found("k" * 100) == []
    assert await searcher.found(" " * 96 + "kojo") == [await _only(searcher)]


async def _only(searcher: Searcher) -> int:
    _, body, _ = await searcher.listed()
    (client,) = body
    client_id = client["id"]
    assert isinstance(client_id, int)
    return client_id

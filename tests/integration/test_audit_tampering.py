"""`ledger audit verify` against tampering with the events: an inserted event, swapped
payloads, reordered versions and a whole chain re-hashed with a key not in the ring.

Each test builds the scenario of test_audit_verify.history through the HTTP API
(client `first`: created, debit 150.00, credit 20.25, deposit 40.00, archived), then
tampers as the superuser (the append-only trigger off) and compares the whole report
with the exact differences: the chain's, from the test's own HMAC oracle
(tests/integration/tampering.py), and the read models' that follow from them.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.audit.folds import line_digest
from shared.keyring import key_id_of
from tests.integration.audit_history import history, report_of, tamper
from tests.integration.tampering import (
    at,
    figures,
    forge_debit,
    forged_debit_figures,
    hash_differences,
    insert_forged,
    rechain,
    rewrite_payload,
    stored_digest,
    stream_rows,
)
from tests.support.environment import Environment, strong_key


async def test_an_event_inserted_inside_a_stream_fails_its_own_hash_and_every_later_one(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """A forged debit of 999.00 inserted as version 3 of `first` (later events
    renumbered 4-6, the forgery chained onto version 2 with a key not in the ring)
    is a hash difference at itself and at each renumbered event, and the read models
    (applied up to version 5) now differ by that debit and the archive moved to 6."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    before = await stream_rows(admin, stream)
    await insert_forged(admin, before[1], 3, strong_key().encode(), amount_minor=99900)

    after = await stream_rows(admin, stream)
    key = environment.settings.hmac_key.encode()
    assert [(row["version"], row["position"]) for row in after] == [
        (1, before[0]["position"]),
        (2, before[1]["position"]),
        (3, after[2]["position"]),
        (4, before[2]["position"]),
        (5, before[3]["position"]),
        (6, before[4]["position"]),
    ]
    assert after[2]["position"] > before[4]["position"]
    chain = hash_differences(key, after)
    assert [(d.version, d.found) for d in chain] == [
        (3, after[2]["hash"]),
        (4, before[2]["hash"]),
        (5, before[3]["hash"]),
        (6, before[4]["hash"]),
    ]
    report = await report_of(environment, pool, business)
    # The forgery's line (the copied debit's id and date, 999.00) on top of the rows.
    debit = await admin.fetchrow(
        "SELECT transaction_id, date FROM rm_transactions"
        " WHERE client_id = $1 AND amount_minor = 15000",
        ids["first"],
    )
    stored = await stored_digest(admin, stream)
    forged = line_digest(
        bid, debit["transaction_id"], "debit", 99900, debit["date"], None
    )
    assert report.differences == [
        *chain,
        *figures(bid, stream, "client", archived=(False, True),
                 debit_minor=(114900, 15000)),
        *figures(bid, stream, "summary", total_balance_minor=(112875, 12975)),
        *figures(bid, stream, "statement", debit_minor=(114900, 15000),
                 transaction_digest=(stored + forged, stored),
                 transaction_lines=(3, 2)),
    ]  # fmt: skip
    assert (report.ok, report.events) == (False, 10)


@pytest.mark.parametrize(
    "change",
    [
        "event_id = gen_random_uuid()",
        "type = 'client.unarchived'",
        "recorded_at = recorded_at - interval '1 day'",
        "metadata = jsonb_set(metadata, '{principal}', '\"forger\"')",
        "business_id = business_id",  # the control: nothing changed, nothing found
    ],
    ids=["event_id", "type", "recorded_at", "metadata", "unchanged"],
)
async def test_each_hashed_column_edited_in_place_fails_that_event_alone(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
    change: str,
) -> None:
    """One column of `first`'s last event (the archive) edited in place: exactly that
    event is a hash difference, expected the real key's HMAC over what is now
    stored, found its stored hash; the read models follow the payload, so they agree."""
    ids = await history(service, business)
    stream = f"client-{ids['first']}"
    last = (await stream_rows(admin, stream))[-1]
    edit = f"UPDATE events SET {change} WHERE position = $1"
    await tamper(admin, edit, last["position"])
    after = await stream_rows(admin, stream)
    chain = hash_differences(environment.settings.hmac_key.encode(), after)
    edited = change != "business_id = business_id"
    assert [(d.version, d.position, d.found) for d in chain] == (
        [(5, last["position"], last["hash"])] if edited else []
    )
    report = await report_of(environment, pool, business)
    assert report.differences == chain


async def test_swapped_payloads_fail_the_hashes_of_both_events(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """The payloads of `first`'s debit (version 2) and credit (version 3) swapped in
    place: exactly those two events are hash differences; the sums, and so the read
    models, are unchanged, and the next event still chains (its previous hash is
    stored)."""
    ids = await history(service, business)
    stream = f"client-{ids['first']}"
    before = await stream_rows(admin, stream)
    await tamper(
        admin,
        "UPDATE events SET payload = CASE position WHEN $1 THEN $4::jsonb"
        " ELSE $3::jsonb END WHERE position IN ($1, $2)",
        before[1]["position"],
        before[2]["position"],
        before[1]["payload"],
        before[2]["payload"],
    )
    after = await stream_rows(admin, stream)
    assert [row["payload"] for row in after[1:3]] == [
        before[2]["payload"],
        before[1]["payload"],
    ]
    report = await report_of(environment, pool, business)
    assert report.differences == hash_differences(
        environment.settings.hmac_key.encode(), after
    )
    assert [(d.kind, d.version, d.position, d.found) for d in report.differences] == [
        ("hash", 2, before[1]["position"], before[1]["hash"]),
        ("hash", 3, before[2]["position"], before[2]["hash"]),
    ]


async def test_reordered_events_fail_their_hashes_and_the_next_events(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """`first`'s versions 2 and 3 exchanged (the credit now comes first): each moved
    event's hash covers its old version and previous hash, and version 4 was chained
    onto the old version 3, so versions 2, 3 and 4 are hash differences and nothing
    else (the sums are the same)."""
    ids = await history(service, business)
    stream = f"client-{ids['first']}"
    before = await stream_rows(admin, stream)
    second, third = before[1]["position"], before[2]["position"]
    for position, version in ((second, 100), (third, 2), (second, 3)):
        move = "UPDATE events SET version = $2 WHERE position = $1"
        await tamper(admin, move, position, version)
    after = await stream_rows(admin, stream)
    assert [row["position"] for row in after] == [
        before[0]["position"], third, second, before[3]["position"],
        before[4]["position"],
    ]  # fmt: skip
    report = await report_of(environment, pool, business)
    assert report.differences == hash_differences(
        environment.settings.hmac_key.encode(), after
    )
    assert [(d.kind, d.version, d.position, d.found) for d in report.differences] == [
        ("hash", 2, third, before[2]["hash"]),
        ("hash", 3, second, before[1]["hash"]),
        ("hash", 4, before[3]["position"], before[3]["hash"]),
    ]


async def test_a_chain_rebuilt_with_a_wrong_key_fails_at_every_event(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """`first`'s debit changed to 15.00 and its whole chain re-hashed, still labelled
    with the current key's id, under a key the ring lacks: every one of its five
    events is a hash difference, and the read models (150.00) differ from the
    forged history."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    before = await stream_rows(admin, stream)
    await rewrite_payload(admin, before[1]["position"], forge_debit)
    await rechain(admin, stream, strong_key().encode())
    after = await stream_rows(admin, stream)
    chain = hash_differences(environment.settings.hmac_key.encode(), after)
    assert [(d.version, d.position) for d in chain] == [
        (row["version"], row["position"]) for row in before
    ]
    report = await report_of(environment, pool, business)
    forged = await forged_debit_figures(admin, bid, stream)
    assert report.differences == [*chain, *forged]


async def test_a_chain_rebuilt_under_its_own_key_id_is_a_key_difference_per_event(
    environment: Environment,
    pool: asyncpg.Pool,
    service: TestClient,
    business: dict[str, Any],
    admin: asyncpg.Connection,
) -> None:
    """The same forgery relabelled with the forger's own key id: each of the five
    events names a key the ring lacks (`key`, field key_id, found that id)."""
    ids = await history(service, business)
    bid, stream = business["business_id"], f"client-{ids['first']}"
    forger = strong_key().encode()
    before = await stream_rows(admin, stream)
    await rewrite_payload(admin, before[1]["position"], forge_debit)
    await rechain(admin, stream, forger, key_id_of(forger))
    report = await report_of(environment, pool, business)
    assert report.differences == [
        *(
            at(row, "key", "key_id", "a key in the keyring", key_id_of(forger))
            for row in before
        ),
        *await forged_debit_figures(admin, bid, stream),
    ]

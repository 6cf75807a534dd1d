"""Hash chains, checked stream by stream from the stored rows alone.

Each row's HMAC is recomputed from its stored content and the previous stored hash in
its stream, with the key its key id names (ChainWalk); versions must run 1, 2, 3...
A changed payload, metadata or time shows as a `hash` difference at that event; a
deleted or repeated event as a `version` difference (and the next event's hash,
chained to what is gone); a deleted tail as `short` against the checkpointed heads
(shared/chain_checkpoints).
"""

from __future__ import annotations

import asyncpg
import msgspec

from services.audit.report import Difference
from shared.hash_chain import GENESIS, event_hash
from shared.keyring import Keyring, weakness
from shared.store.event_rows import stored_hashed_content


class CheckedHead(msgspec.Struct, frozen=True):
    stream_id: str
    version: int
    hash: str
    source: str  # "chain_checkpoints" or the ledger.checkpoint event's checkpoint id


class ChainWalk:
    """Fed every event ordered by (stream_id, version); collects the differences.

    Each row is checked with the key its `key_id` names in the keyring; a `key`
    difference is a row whose key the ring lacks, a row that names a key unfit to
    sign (a known key, shared/keyring.weakness: no process ever signed with one since
    key ids exist, so such a row was forged), or an unlabelled row after a labelled
    one in its stream (labels never go away: that row was relabelled), or above
    LEDGER_HMAC_LEGACY_POSITION_MAX when that is set. A legacy row (no key id) is
    checked against every key in the ring, since it does not say which hashed it. So
    a known key listed among the previous keys (which needs the bound) vouches only
    for legacy rows up to the bound: rows it could forge before key ids, and nothing
    written since (README, Tamper evidence).
    """

    def __init__(self, keys: Keyring) -> None:
        self._keys = keys
        self._stream = ""
        self._expected_version = 1
        self._previous = GENESIS
        self._labelled = False
        self.differences: list[Difference] = []
        self.streams = 0

    def add(self, row: asyncpg.Record) -> None:
        stream_id = row["stream_id"]
        if stream_id != self._stream:
            self._stream, self._expected_version, self._previous = stream_id, 1, GENESIS
            self._labelled = False
            self.streams += 1
        if row["version"] != self._expected_version:
            self.differences.append(
                difference_at(
                    row, "version", "version", self._expected_version, row["version"]
                )
            )
        if row["key_id"] is None:
            self._check_legacy(row)
        else:
            self._check_labelled(row)
        self._previous = row["hash"]
        self._expected_version = row["version"] + 1

    def _check_labelled(self, row: asyncpg.Record) -> None:
        self._labelled = True
        key = self._keys.secret(row["key_id"])
        if key is None:
            expected = "a key in the keyring"
        elif weakness(key.decode(errors="replace")) is not None:
            expected = "a key fit to sign"
        else:
            recomputed = event_hash(key, self._previous, stored_hashed_content(row))
            if recomputed != row["hash"]:
                self.differences.append(
                    difference_at(row, "hash", "hash", recomputed, row["hash"])
                )
            return
        self.differences.append(
            difference_at(row, "key", "key_id", expected, row["key_id"])
        )

    def _check_legacy(self, row: asyncpg.Record) -> None:
        bound = self._keys.legacy_position_max
        if self._labelled or (bound and row["position"] > bound):
            expected = "a key id (the stream has them)"
            if not self._labelled:
                expected = f"a key id (legacy rows end at position {bound})"
            self.differences.append(difference_at(row, "key", "key_id", expected, None))
            return
        content = stored_hashed_content(row)
        keys = self._keys.keys()
        recomputed = [event_hash(key, self._previous, content) for key in keys]
        if row["hash"] not in recomputed:
            hashed = recomputed[0]  # what the current key would have written
            self.differences.append(
                difference_at(row, "hash", "hash", hashed, row["hash"])
            )


def difference_at(
    row: asyncpg.Record,
    kind: str,
    field: str | None,
    expected: object,
    found: object,
) -> Difference:
    """A difference at one stored event: its business, stream, position, version."""
    return Difference(
        kind=kind,
        business_id=row["business_id"],
        stream_id=row["stream_id"],
        position=row["position"],
        version=row["version"],
        field=field,
        expected=expected,  # type: ignore[arg-type]
        found=found,  # type: ignore[arg-type]
    )


_HEADS = """
SELECT h.stream_id, h.version, h.hash, h.source, e.hash AS stored, e.position,
       e.business_id,
       (SELECT max(version) FROM events x WHERE x.stream_id = h.stream_id) AS last
FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[])
     AS h(stream_id, version, hash, source)
LEFT JOIN LATERAL (SELECT * FROM events e
                   WHERE e.stream_id = h.stream_id AND e.version = h.version
                   OFFSET 0) AS e ON true  -- an index lookup per head in any plan
ORDER BY h.stream_id, h.version
"""


async def check_heads(
    conn: asyncpg.Connection, heads: list[CheckedHead]
) -> list[Difference]:
    """Every checkpointed head must still be in its stream, with the same hash."""
    unique = {(head.stream_id, head.version, head.hash): head for head in heads}
    rows = await conn.fetch(
        _HEADS,
        [head.stream_id for head in unique.values()],
        [head.version for head in unique.values()],
        [head.hash for head in unique.values()],
        [head.source for head in unique.values()],
    )
    differences = []
    for row in rows:
        if row["stored"] is None:
            differences.append(
                Difference(
                    kind="short",
                    stream_id=row["stream_id"],
                    version=row["version"],
                    field=f"last version (checkpoint {row['source']})",
                    expected=row["version"],
                    found=row["last"] or 0,
                )
            )
        elif row["stored"] != row["hash"]:
            field = f"hash (checkpoint {row['source']})"
            differences.append(
                difference_at(row, "checkpoint", field, row["hash"], row["stored"])
            )
    return differences

"""What a projector's NOTIFY tells the read-your-writes waiters (services/http/
projection_wait.py): `ledger_projected`, sent at the COMMIT of each batch, with the
projection's name, `;`, then `stream:version` for each stream the batch advanced.
A list cut short ends with `+`; a bare name (a rebuild's batches, whose tables are
not live yet, or a projector of an earlier version) lists nothing.
"""

from __future__ import annotations

LIST, MORE = ";", "+"
# A NOTIFY payload must stay under 8,000 bytes: the streams that do not fit are left
# out and MORE says so (their waiters are then checked with a query).
NOTIFY_BYTES_MAX = 7_900


def applied_payload(
    projection: str, tracked: dict[str, int], known: dict[str, int] | None = None
) -> str:
    """The payload for a batch that brought the streams to the `tracked` versions
    (those at their `known` version are left out: the batch did not move them)."""
    known = known or {}
    items: list[str] = []
    size = len(projection.encode()) + 3  # LIST and room for ` +`
    for stream, version in tracked.items():
        if known.get(stream) == version:
            continue
        item = f"{stream}:{version}"
        size += len(item.encode()) + 1
        if size > NOTIFY_BYTES_MAX:
            items.append(MORE)
            break
        items.append(item)
    return f"{projection}{LIST}{' '.join(items)}"

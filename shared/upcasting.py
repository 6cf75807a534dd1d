"""Event evolution: upcasters read an old stored payload as the current schema.

Every stored event records the schema version of its payload. When a payload's shape
changes, the change gets a new version for that event type and an upcaster: a pure
function from the payload of version N (a JSON object, as stored) to the payload of
version N + 1. `UPCASTERS.upcast` applies the steps from the stored version up to the
type's current version, so the msgspec structs in `shared/events.py` only ever
describe the current shape. New events are written at their type's current version
(`UPCASTERS.current_version`), and never upcast again.

The stored row is never changed (the table is append-only): an event keeps the version
it was written with, and its hash covers that stored content. Readers get the upcast
payload and the current `schema_version`; the audit recomputes the hash chain from the
stored row (`event_rows.stored_hashed_content`), not from what readers get. Every
reader decodes stored rows through one function, `event_rows.envelope_from_row`,
which calls this registry.
"""

from __future__ import annotations

from collections.abc import Callable

Payload = dict[str, object]
Upcaster = Callable[[Payload], Payload]
FIRST_VERSION = 1


class Upcasters:
    """The steps (event type, from version) -> upcaster, contiguous from version 1."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}
        self._current: dict[str, int] = {}

    def register(self, event_type: str, from_version: int, step: Upcaster) -> None:
        """Add the step from `from_version` to the next: it must follow the last one."""
        assert from_version == self.current_version(event_type), (
            f"{event_type} is at version {self.current_version(event_type)}:"
            f" an upcaster from version {from_version} would leave a gap"
        )
        self._steps[(event_type, from_version)] = step
        self._current[event_type] = from_version + 1

    def unregister(self, event_type: str, from_version: int) -> None:
        """Remove the newest step of a type (tests that define a version of their own
        take it away again)."""
        assert from_version + 1 == self.current_version(event_type), "not the newest"
        del self._steps[(event_type, from_version)]
        self._current[event_type] = from_version

    def current_version(self, event_type: str) -> int:
        """The schema version new events of this type are written with."""
        return self._current.get(event_type, FIRST_VERSION)

    def needs_upcast(self, event_type: str, schema_version: int) -> bool:
        return (event_type, schema_version) in self._steps

    def upcast(
        self, event_type: str, schema_version: int, payload: Payload
    ) -> tuple[int, Payload]:
        """The payload at its type's current version, and that version."""
        current = self.current_version(event_type)
        assert FIRST_VERSION <= schema_version <= current, (
            f"{event_type} version {schema_version} is unknown here"
            f" (this code reads versions {FIRST_VERSION} to {current})"
        )
        version = schema_version
        while version < current:
            payload = self._steps[(event_type, version)](payload)
            version += 1
        return version, payload


# The registry every reader uses. A payload change registers its step here, beside the
# struct it changes (none has changed yet: every type is at version 1).
UPCASTERS = Upcasters()

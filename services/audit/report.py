"""What `ledger audit verify` found: each difference, exactly, and the totals."""

from __future__ import annotations

import msgspec

Value = str | int | bool | None


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    """One disagreement. `kind` says what was checked: `hash`, `version` (a gap or a
    repeat in a stream), `short` (the stream ends below a checkpointed head),
    `checkpoint` (a checkpointed hash differs), `key` (a row's key id names no key
    in the keyring or a key unfit to sign, or is missing after labelled rows),
    `decode` (a payload that no longer reads), `rule` (events that break a ledger
    rule), or a read model: `client`, `category`, `summary`, `statement`."""

    kind: str
    business_id: int | None = None
    stream_id: str | None = None
    position: int | None = None
    version: int | None = None
    field: str | None = None
    expected: Value = None
    found: Value = None

    def line(self) -> str:
        where = [self.kind]
        if self.business_id is not None:
            where.append(f"business {self.business_id}")
        if self.stream_id is not None:
            where.append(f"stream {self.stream_id}")
        if self.version is not None:
            where.append(f"version {self.version}")
        if self.position is not None:
            where.append(f"position {self.position}")
        field = f"{self.field}: " if self.field else ""
        found = f"expected {self.expected!r}, found {self.found!r}"
        return f"{' '.join(where)}: {field}{found}"


class Report(msgspec.Struct, kw_only=True):
    ok: bool
    businesses: int
    streams: int
    events: int
    differences: list[Difference]

    def summary(self) -> str:
        verdict = "ok" if self.ok else f"{len(self.differences)} differences"
        return (
            f"audit verify: {verdict}; {self.businesses} businesses,"
            f" {self.streams} streams, {self.events} events checked"
        )

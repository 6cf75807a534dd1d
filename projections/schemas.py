"""The read-model schema files each projection owns, for the migrator."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def schema_files() -> list[tuple[str, str]]:
    """(name, SQL) for each projection's schema, in a stable order."""
    return [
        (f"projection/{name}", (HERE / name / "schema.sql").read_text())
        for name in ("balances", "statements")
    ]

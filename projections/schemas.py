"""The read-model schema files each projection owns, for the migrator."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def schema_files() -> list[tuple[str, str]]:
    """(name, SQL) for each projection's schema, in a stable order."""
    return [
        file for name in ("balances", "statements") for file in projection_schema(name)
    ]


def projection_schema(name: str) -> list[tuple[str, str]]:
    """(name, SQL) of one projection's schema files, in the order they apply (a
    rebuild runs them all in an empty schema)."""
    return [(f"projection/{name}", (HERE / name / "schema.sql").read_text())]

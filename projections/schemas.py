"""The read-model schema files each projection owns, for the migrator."""

from __future__ import annotations

from pathlib import Path

from projections.registry import PROJECTIONS

HERE = Path(__file__).parent


def schema_files() -> list[tuple[str, str]]:
    """(name, SQL) for each projection's schema, in the registry's order."""
    return [file for name in PROJECTIONS for file in projection_schema(name)]


def projection_schema(name: str) -> list[tuple[str, str]]:
    """(name, SQL) of one projection's schema files in the order they apply: its
    `schema.sql`, then its numbered changes (`0002_*.sql`, ...). The migrator records
    each name once, so an existing database gets only the changes it has not had; a
    rebuild runs them all in an empty schema."""
    directory = HERE / name
    return [
        (f"projection/{name}", (directory / "schema.sql").read_text()),
        *(
            (f"projection/{name}/{path.name}", path.read_text())
            for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
        ),
    ]

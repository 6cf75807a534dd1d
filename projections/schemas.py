"""The read-model schema files each projection owns, for the migrator."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def schema_files() -> list[tuple[str, str]]:
    """(name, SQL) for each projection's schema, in a stable order: its `schema.sql`,
    then its numbered changes (`0002_*.sql`, ...) in order. The migrator records each
    name once, so an existing database gets only the changes it has not had."""
    files: list[tuple[str, str]] = []
    for name in ("balances", "statements"):
        directory = HERE / name
        files.append((f"projection/{name}", (directory / "schema.sql").read_text()))
        files.extend(
            (f"projection/{name}/{path.name}", path.read_text())
            for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
        )
    return files

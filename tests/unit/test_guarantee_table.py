"""tests/README.md's guarantee table names only tests that exist: a renamed or deleted
test makes this fail, so the table cannot go on citing proof that is gone."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
_CITED = re.compile(r"`([a-z0-9_/]+\.py)?(?:::(test_[a-z0-9_]+))?[^`]*`")


def _cited() -> list[tuple[str, str | None]]:
    """(file, test or None) for every citation, `::name` taking the last file named."""
    cited: list[tuple[str, str | None]] = []
    for line in (TESTS / "README.md").read_text().splitlines():
        if not line.startswith("| "):
            continue
        file = None
        for match in _CITED.finditer(line.split(" | ", 1)[-1]):
            file = match.group(1) or file
            if file is not None and (match.group(1) or match.group(2)):
                cited.append((file, match.group(2)))
    return cited


def test_every_cited_file_and_test_exists() -> None:
    """Each cited file is under tests/, and each cited test is defined in it."""
    cited = _cited()
    assert len(cited) > 60
    missing = []
    for file, test in cited:
        path = TESTS / file
        if not path.is_file():
            missing.append(file)
        elif test is not None and not re.search(
            rf"^(async )?def {test}\(", path.read_text(), re.MULTILINE
        ):
            missing.append(f"{file}::{test}")
    assert missing == []

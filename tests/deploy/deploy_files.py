"""What the deploy/ tests read: the files under deploy/, and the CLI and settings they
must stay in step with (the `ledger` parser, `ledger run`'s roles, the LEDGER_*
variables shared/config.py reads)."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from services.cli.main import build_parser
from services.cli.processes import roles
from shared import config

REPOSITORY = Path(__file__).resolve().parents[2]
DEPLOY = REPOSITORY / "deploy"
# Every variable load_settings() reads; anything else a deploy file sets is a typo.
SETTINGS_VARIABLES = frozenset(config._ENVIRONMENT)


class NotALedgerCommand(AssertionError):
    """A command line that `ledger`'s own parser refuses."""


def ledger_arguments(argv: list[str]) -> argparse.Namespace:
    """Parse argv (without the program name) exactly as `ledger` would."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return build_parser().parse_args(argv)
    except SystemExit:
        raise NotALedgerCommand(f"{argv}: {errors.getvalue().strip()}") from None


def long_running_commands() -> list[list[str]]:
    """What `ledger run` starts, one process each: api, relay, projector."""
    return sorted(roles())


def load_yaml(path: Path) -> list[dict[str, Any]]:
    with path.open() as file:
        return [document for document in yaml.safe_load_all(file) if document]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments gone."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, f"{path}: ends inside a continued line"
    result = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        result.append((instruction.upper(), re.sub(r"\s+", " ", arguments.strip())))
    return result


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (name, _) in enumerate(instructions) if name == "FROM"]
    return instructions[starts[-1] :]


def ignored(patterns: list[str], path: str) -> bool:
    """Whether a .dockerignore leaves `path` out of the build context: the last pattern
    that matches the path or one of its parent directories decides; `!` re-includes."""
    candidates = [str(p) for p in reversed(PurePosixPath(path).parents)][1:] + [path]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!")
        if any(_matches(glob, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def _matches(glob: str, path: str) -> bool:
    if glob.startswith("**/"):
        return fnmatch.fnmatchcase(path, glob) or fnmatch.fnmatchcase(path, glob[3:])
    return fnmatch.fnmatchcase(path, glob)


def dockerignore_patterns(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]

"""deploy/Dockerfile: one slim image, non-root, the project installed from
pyproject.toml, `ledger` as the entrypoint (no Docker engine here: the file is read)."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.deploy.deploy_files import (
    DEPLOY,
    REPOSITORY,
    SETTINGS_VARIABLES,
    dockerfile_instructions,
    dockerignore_patterns,
    final_stage,
    ignored,
    ledger_arguments,
)

DOCKERFILE = DEPLOY / "Dockerfile"
PYPROJECT = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())


def _final() -> dict[str, list[str]]:
    stage: dict[str, list[str]] = {}
    for name, arguments in final_stage(dockerfile_instructions(DOCKERFILE)):
        stage.setdefault(name, []).append(arguments)
    return stage


def test_every_stage_is_a_slim_python_the_project_supports() -> None:
    """Each FROM is python:<version>-slim, and that version meets requires-python."""
    bases = [a for n, a in dockerfile_instructions(DOCKERFILE) if n == "FROM"]
    assert [base.split()[0] for base in bases] == ["python:3.11-slim"] * 2
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    """The final stage's last USER is uid 10001 (numeric, so Kubernetes'
    runAsNonRoot can check it), and no later instruction switches back."""
    final = final_stage(dockerfile_instructions(DOCKERFILE))
    users = [arguments for name, arguments in final if name == "USER"]
    assert users == ["10001:10001"]
    uid = int(users[-1].split(":")[0])
    assert uid != 0
    assert "useradd --system --uid 10001" in " ".join(_final()["RUN"])


def test_the_entrypoint_is_the_ledger_console_script_and_cmd_a_subcommand() -> None:
    """ENTRYPOINT is `ledger` (pyproject's console script) and CMD parses with the
    CLI's own parser: one image, the process chosen by the command."""
    final = _final()
    assert final["ENTRYPOINT"] == ['["ledger"]']
    assert PYPROJECT["project"]["scripts"]["ledger"] == "services.cli.main:main"
    command = json.loads(final["CMD"][-1])
    assert command == ["api"]
    assert ledger_arguments(command).command == "api"


def test_dependencies_come_from_the_run_lock_with_hashes_then_the_project_alone() -> (
    None
):
    """The build stage installs requirements-run.lock with --require-hashes and
    --no-deps before anything else, then copies pyproject.toml and exactly the packages
    setuptools includes and installs the project alone: `--no-deps` (nothing resolved
    at build time) and `--no-build-isolation` (built by the locked setuptools),
    non-editable (the SQL ships as package data)."""
    instructions = dockerfile_instructions(DOCKERFILE)
    locked = instructions.index(
        (
            "RUN",
            "/opt/ledger/bin/pip install --require-hashes --no-deps"
            " -r requirements-run.lock",
        )
    )
    install = instructions.index(
        ("RUN", "/opt/ledger/bin/pip install --no-deps --no-build-isolation .")
    )
    assert locked < install
    copied = [
        arguments.split()[0]
        for name, arguments in instructions[:install]
        if name == "COPY"
    ]
    included = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(copied) == sorted(
        ["requirements-run.lock", "pyproject.toml"] + [p.rstrip("*") for p in included]
    )
    assert [a for n, a in instructions[:locked] if n == "COPY"] == [
        "requirements-run.lock ./"
    ]
    assert [a for n, a in instructions[install:] if n == "COPY"] == [
        "--from=build /opt/ledger /opt/ledger"
    ]


def test_the_image_environment_sets_only_real_settings_and_listens_everywhere() -> None:
    """ENV's LEDGER_* names are settings shared/config.py reads; the API listens on
    0.0.0.0 (reachable from outside the container) on the port EXPOSE names."""
    words = " ".join(_final()["ENV"]).split()
    pairs = dict(word.split("=", 1) for word in words)
    ledger = {
        name: value for name, value in pairs.items() if name.startswith("LEDGER_")
    }
    assert ledger == {"LEDGER_HTTP_HOST": "0.0.0.0", "LEDGER_HTTP_PORT": "8080"}
    assert set(ledger) <= SETTINGS_VARIABLES
    assert _final()["EXPOSE"] == ["8080"]
    assert pairs["PATH"] == "/opt/ledger/bin:$PATH"


@pytest.mark.parametrize(
    ("path", "left_out"),
    [
        ("pyproject.toml", False),
        ("requirements-run.lock", False),
        ("requirements.lock", True),
        ("shared/config.py", False),
        ("shared/store/sql/0001_events.sql", False),
        ("services/cli/main.py", False),
        ("projections/balances/schema.sql", False),
        (".venv/bin/python", True),
        (".git/HEAD", True),
        ("tests/conftest.py", True),
        ("README.md", True),
        ("shared/__pycache__/config.cpython-311.pyc", True),
    ],
)
def test_the_build_context_holds_only_what_the_image_copies(
    path: str, left_out: bool
) -> None:
    """deploy/Dockerfile.dockerignore (BuildKit reads it beside the Dockerfile) leaves
    out everything but the run lock, pyproject.toml and the three packages."""
    patterns = dockerignore_patterns(DEPLOY / "Dockerfile.dockerignore")
    assert ignored(patterns, path) is left_out

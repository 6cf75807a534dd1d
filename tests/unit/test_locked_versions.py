"""The installed dependencies are exactly the locked ones (requirements.lock), and the
runtime lock is the same resolution's subset: what a fresh clone installs cannot change
under it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def _pins(lock: str) -> dict[str, tuple[str, str | None]]:
    """name -> (version, marker or None), from a hashed requirements file."""
    pins: dict[str, tuple[str, str | None]] = {}
    for line in (ROOT / lock).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            name, version, marker = match.groups()
            pins[canonicalize_name(name)] = (version, marker)
    return pins


def test_every_locked_package_that_applies_here_is_installed_at_its_version() -> None:
    """Each pin whose marker holds on this interpreter is installed, at exactly that
    version; a drifted install (an upgrade by hand, an unlocked resolution) fails."""
    pins = _pins("requirements.lock")
    assert len(pins) > 30  # the whole set: runtime, test and bench extras
    drifted = {}
    for name, (version, marker) in pins.items():
        if marker is not None and not Marker(marker).evaluate():
            continue
        installed = metadata.version(name)
        if installed != version:
            drifted[name] = (version, installed)
    assert drifted == {}


def test_the_runtime_lock_is_the_full_locks_versions() -> None:
    """`make run` installs requirements-run.lock: every pin there is the same version
    as in requirements.lock, and every runtime dependency is in it."""
    full = _pins("requirements.lock")
    run = _pins("requirements-run.lock")
    assert {name: full[name][0] for name in run} == {
        name: pin[0] for name, pin in run.items()
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {
        canonicalize_name(re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0])
        for spec in project["dependencies"]
    }
    assert runtime <= set(run)
    assert not {"pytest", "schemathesis", "mypy", "ruff"} & set(run)


def test_the_build_backend_is_pinned_and_locked() -> None:
    """The build backend is an exact pin, and both locks carry that version (the
    project is installed with --no-build-isolation, built by the locked setuptools)."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    (requirement,) = build["requires"]
    name, version = requirement.split("==")
    assert name == "setuptools"
    assert _pins("requirements.lock")["setuptools"][0] == version
    assert _pins("requirements-run.lock")["setuptools"][0] == version
    assert metadata.version("setuptools") == version

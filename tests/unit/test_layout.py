"""The layout's promises that import-linter cannot state alone: every module directly
in shared/ is in the kernel contract's list (a new one is not silently outside it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _contract(name_start: str) -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    found = [c for c in contracts if c["name"].startswith(name_start)]
    assert len(found) == 1, name_start
    return found[0]


def test_every_module_directly_in_shared_is_in_the_kernel_contract() -> None:
    kernel = _contract("the kernel imports neither")
    on_disk = {
        f"shared.{path.stem}"
        for path in (ROOT / "shared").glob("*.py")
        if path.stem != "__init__"
    }
    assert set(kernel["source_modules"]) == on_disk  # type: ignore[arg-type]


def test_the_kernel_may_not_import_the_store_the_bus_or_io_libraries() -> None:
    kernel = _contract("the kernel imports neither")
    assert set(kernel["forbidden_modules"]) >= {  # type: ignore[arg-type]
        "shared.store",
        "shared.bus",
        "asyncpg",
        "aio_pika",
        "aiohttp",
    }

"""Only services/bootstrap.py opens pools and connections: a scan of the source for
every reference to an opener, resolved through each module's imports.

The openers are the libraries' (asyncpg.connect, asyncpg.create_pool,
aio_pika.connect...) and the tools that configure a connection before handing it out
(shared/store/postgres.py's connect and create_pool, shared/bus/broker.py's connect).
The tools' own modules may reach the libraries' openers; only the bootstrap may reach
either. The client SDK (shared/client/) is exempt: it runs in other teams' processes,
which have no bootstrap of ours, and its Subscriber opens its broker connection itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("shared", "services", "projections")
EXEMPT = ("shared/client/",)
LIBRARY_OPENERS = frozenset(
    {
        "asyncpg.connect",
        "asyncpg.create_pool",
        "asyncpg.pool.create_pool",
        "asyncpg.connection.connect",
        "aio_pika.connect",
        "aio_pika.connect_robust",
        "aio_pika.Connection",
        "aio_pika.RobustConnection",
    }
)
POSTGRES_TOOLS = frozenset(
    {
        "shared.store.postgres.connect",
        "shared.store.postgres.create_pool",
        "shared.store.postgres.BoundedPool",
    }
)
BROKER_TOOLS = frozenset({"shared.bus.broker.connect"})
TOOLS = POSTGRES_TOOLS | BROKER_TOOLS
ALLOWED = {
    "services/bootstrap.py": LIBRARY_OPENERS | TOOLS,
    "shared/store/postgres.py": LIBRARY_OPENERS | POSTGRES_TOOLS,
    "shared/bus/broker.py": LIBRARY_OPENERS | BROKER_TOOLS,
}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _aliases(tree: ast.Module, module: str) -> dict[str, str]:
    """What each name bound at module level by an import or a definition stands for,
    fully qualified."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names[node.name] = f"{module}.{node.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                names[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, names)
        return None if base is None else f"{base}.{node.attr}"
    return None


def openers_used(source: str, module: str) -> set[str]:
    """Every opener the module refers to (called or passed on), by its full name."""
    tree = ast.parse(source)
    names = _aliases(tree, module)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name | ast.Attribute):
            dotted = _dotted(node, names)
            if dotted in LIBRARY_OPENERS | TOOLS:
                found.add(dotted)
    return found


def _openers_in(path: Path) -> set[str]:
    return openers_used(path.read_text(), _module_name(path))


def _source_files() -> list[Path]:
    files = [path for top in SOURCES for path in sorted((ROOT / top).rglob("*.py"))]
    return [
        path
        for path in files
        if not path.relative_to(ROOT).as_posix().startswith(EXEMPT)
    ]


def test_only_the_bootstrap_opens_pools_and_connections() -> None:
    """Every source module but the bootstrap and the tools' own modules refers to no
    opener; those refer only to the ones allowed them."""
    strays = {}
    for path in _source_files():
        relative = path.relative_to(ROOT).as_posix()
        used = _openers_in(path) - ALLOWED.get(relative, frozenset())
        if used:
            strays[relative] = sorted(used)
    assert strays == {}


def test_the_scan_sees_the_bootstraps_own_openers() -> None:
    """The scan is not blind: in the bootstrap it finds the openers it calls, whether
    reached through a module alias (postgres.create_pool, broker.connect) or the
    library's name (asyncpg.connect, aio_pika.connect)."""
    assert _openers_in(ROOT / "services" / "bootstrap.py") >= {
        "asyncpg.connect",
        "aio_pika.connect",
        "shared.store.postgres.connect",
        "shared.store.postgres.create_pool",
        "shared.bus.broker.connect",
    }


def test_the_scan_resolves_names_imported_from_an_opener_module() -> None:
    """A name imported from its module (`from asyncpg import connect as c`) or a
    module imported under another name is still seen, called or passed on."""
    source = (
        "import aio_pika as amqp\n"
        "from asyncpg import connect as c\n"
        "from shared.store.postgres import create_pool\n"
        "async def f(settings):\n"
        "    await c('dsn'); await amqp.connect('url')\n"
        "    return partial(create_pool, 'dsn')\n"
    )
    assert openers_used(source, "stray") == {
        "asyncpg.connect",
        "aio_pika.connect",
        "shared.store.postgres.create_pool",
    }

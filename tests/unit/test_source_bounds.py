"""Issue 11's size bounds, kept: a module of shared/, services/, projections/ or tests/
has at most 300 lines, a function (its decorators included) at most 60. Generated and
vendored files are aside (services/api_docs/assets/).

Some modules and functions were over a bound when the bound was set; they are listed
below with their size then, and may only shrink. The tests fail when a listed one
grows, when a listed one is within bounds (take it off the list), and when anything
not listed passes a bound.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("shared", "services", "projections", "tests")
ASIDE = ("services/api_docs/assets/",)
MODULE_LINES_MAX = 300
FUNCTION_LINES_MAX = 60

# One a line, `path=lines` for a module, `path::Class.function=lines` for a function:
# its lines when listed.
LISTED = """
"""
OVER_BOUNDS = {
    name: int(lines)
    for name, _, lines in (entry.rpartition("=") for entry in LISTED.split())
}


def _functions(tree: ast.AST, prefix: str = "") -> dict[str, int]:
    """Every function's qualified name and lines, from its first decorator to its
    last line; methods and nested functions too."""
    lines: dict[str, int] = {}
    for node in ast.iter_child_nodes(tree):
        name = prefix
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}."
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            assert node.end_lineno is not None
            lines[name[:-1]] = node.end_lineno - first + 1
        lines |= _functions(node, name)
    return lines


@functools.cache
def _sizes() -> dict[str, int]:
    """The lines of every module and function, keyed as OVER_BOUNDS is."""
    sizes: dict[str, int] = {}
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            module = path.relative_to(ROOT).as_posix()
            if module.startswith(ASIDE):
                continue
            text = path.read_text(encoding="utf-8")
            sizes[module] = len(text.splitlines())
            for name, lines in _functions(ast.parse(text)).items():
                sizes[f"{module}::{name}"] = lines
    return sizes


def _over_bounds() -> dict[str, int]:
    return {
        name: lines
        for name, lines in _sizes().items()
        if lines > (FUNCTION_LINES_MAX if "::" in name else MODULE_LINES_MAX)
    }


def test_no_module_or_function_passes_a_bound_unless_listed() -> None:
    """Given every module and function, none that is not listed is over its bound."""
    unlisted = {k: v for k, v in _over_bounds().items() if k not in OVER_BOUNDS}
    assert unlisted == {}, "over 300 lines a module or 60 a function"


def test_a_listed_module_or_function_only_shrinks() -> None:
    """Given the listed ones still over a bound, none has grown since listed."""
    grown = {
        name: f"{OVER_BOUNDS[name]} -> {lines}"
        for name, lines in _over_bounds().items()
        if name in OVER_BOUNDS and lines > OVER_BOUNDS[name]
    }
    assert grown == {}


def test_a_listed_module_or_function_within_bounds_is_taken_off_the_list() -> None:
    """Given the list, each one on it is still over a bound (a module or function
    split, shrunk or gone is taken off, so the list only ever gets shorter)."""
    over = _over_bounds()
    fixed = sorted(name for name in OVER_BOUNDS if name not in over)
    assert fixed == [], "within bounds now: take these off OVER_BOUNDS"


def test_the_function_lines_count_the_decorators() -> None:
    """Given a decorated method, its lines run from the decorator to its end."""
    source = "class A:\n    @staticmethod\n    def f():\n        pass\n"
    assert _functions(ast.parse(source)) == {"A.f": 3}

"""Issue 11's rule against repeated source, kept: no run of six or more lines stands
word for word in two places of shared/, services/ and projections/ (two modules, or
one module twice). Tests are not read: they may share a shape.

Lines are compared much as `duplicates` reads them: white space folded, and blank
lines, comments (one at a line's end too), import statements and lines of lone
punctuation (`)`, `],`, `):`, a signature's `*,`) passed over. Lines alike but for
their names and values (its "shape" pairs) are not looked for here: too many of those
are unrelated structs and signatures to fail a test on.

The pairs of modules that shared runs when the rule was set are listed with how many
lines they shared, and may only shrink. The tests fail when a listed pair shares more,
when a listed pair shares nothing any more (take it off the list), and when any other
pair shares a run.
"""

from __future__ import annotations

import ast
import functools
import io
import tokenize
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("shared", "services", "projections")
RUN_LINES_MIN = 6
PUNCTUATION = frozenset("()[]{},:;.*/ ")

# One a line, `module~module=lines`: the lines the two shared when listed. Some are
# the SDK's public signatures, which its methods must keep (the bodies are one call).
LISTED = """
shared/client/commands.py~shared/client/commands.py=6
shared/domain.py~shared/events.py=6
"""
KNOWN_PAIRS = {
    pair: int(lines)
    for pair, _, lines in (entry.rpartition("=") for entry in LISTED.split())
}

Line = tuple[int, str]  # its number in the module, and its text as compared
Run = tuple[int, int, int, int]  # first and last line in one module, in the other


def compared_lines(source: str) -> list[Line]:
    """The module's lines that count, each with its white space folded."""
    imports = {
        number
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for number in range(node.lineno, (node.end_lineno or node.lineno) + 1)
    }
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column]
    return [
        (number, " ".join(text.split()))
        for number, text in enumerate(lines, start=1)
        if number not in imports and not set(text) <= PUNCTUATION
    ]


def shared_runs(modules: dict[str, list[Line]]) -> dict[str, list[Run]]:
    """Every run of RUN_LINES_MIN or more compared lines that stands in two places,
    by pair of modules (`a~b`, in path order), longest first."""
    places = defaultdict(list)
    for module, lines in modules.items():
        for start in range(len(lines) - RUN_LINES_MIN + 1):
            window = tuple(text for _, text in lines[start : start + RUN_LINES_MIN])
            places[window].append((module, start))
    starts: dict[tuple[str, str], set[tuple[int, int]]] = defaultdict(set)
    for found in places.values():
        for index, first in enumerate(found):
            for second in found[index + 1 :]:
                (a, i), (b, j) = sorted((first, second))
                if a != b or j - i >= RUN_LINES_MIN:  # one module: never overlapping
                    starts[(a, b)].add((i, j))
    return {
        f"{a}~{b}": _merged(modules[a], modules[b], pairs)
        for (a, b), pairs in starts.items()
    }


def _merged(
    a_lines: list[Line], b_lines: list[Line], starts: set[tuple[int, int]]
) -> list[Run]:
    """Windows that follow one another on both sides, merged into runs."""
    runs = []
    for i, j in sorted(starts):
        if (i - 1, j - 1) in starts:
            continue  # inside a run that began earlier
        more = 0  # windows after the first, one line further on both sides
        while (i + more + 1, j + more + 1) in starts:
            more += 1
        a_last = a_lines[i + RUN_LINES_MIN + more - 1][0]
        b_last = b_lines[j + RUN_LINES_MIN + more - 1][0]
        runs.append((a_lines[i][0], a_last, b_lines[j][0], b_last))
    return runs


def _run_lines(modules: dict[str, list[Line]], pair: str, run: Run) -> int:
    """How many compared lines the run holds (its first module's, in its range)."""
    module = pair.split("~")[0]
    return sum(1 for number, _ in modules[module] if run[0] <= number <= run[1])


@functools.cache
def _pairs() -> tuple[dict[str, int], dict[str, list[str]]]:
    """Each pair's shared lines, and its runs as `a:first-last ~ b:first-last`."""
    modules = {
        path.relative_to(ROOT).as_posix(): compared_lines(path.read_text("utf-8"))
        for tree in TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
    }
    runs = shared_runs(modules)
    sizes = {
        pair: sum(_run_lines(modules, pair, run) for run in pair_runs)
        for pair, pair_runs in runs.items()
    }
    where = {
        pair: [f"{r[0]}-{r[1]} ~ {r[2]}-{r[3]}" for r in pair_runs]
        for pair, pair_runs in runs.items()
    }
    return sizes, where


def test_no_pair_of_modules_shares_a_run_unless_listed() -> None:
    """Given the source modules, no unlisted pair shares six lines word for word."""
    sizes, where = _pairs()
    new = {pair: where[pair] for pair in sizes if pair not in KNOWN_PAIRS}
    assert new == {}, "repeated source: one piece of code where the logic is one"


def test_a_listed_pair_only_shrinks() -> None:
    """Given the listed pairs, none shares more lines than when it was listed."""
    sizes, where = _pairs()
    grown = {
        pair: (KNOWN_PAIRS[pair], lines, where[pair])
        for pair, lines in sizes.items()
        if pair in KNOWN_PAIRS and lines > KNOWN_PAIRS[pair]
    }
    assert grown == {}


def test_a_listed_pair_sharing_nothing_is_taken_off_the_list() -> None:
    """Given the list, each pair on it still shares a run (so the list only ever
    gets shorter)."""
    sizes, _ = _pairs()
    gone = sorted(pair for pair in KNOWN_PAIRS if pair not in sizes)
    assert gone == [], "no repetition left: take these off LISTED"


def test_white_space_comments_imports_and_punctuation_do_not_hide_a_run() -> None:
    """Given two copies of a run that differ only in what is passed over, they are
    one run; five shared lines are none."""
    first = "import a\nx = 1\ny = 2\nz = f(\n    x,\n)\nu = 3\nv = 4\nw = 5\n"
    second = "from b import c\nx  =  1  # one\ny = 2\n\nz = f(\n  x,\n  )\nu = 3\n"
    modules = {
        "a.py": compared_lines(first),
        "b.py": compared_lines(second + "v = 4\nw = 5\n"),
        "c.py": compared_lines(second + "v = 5\n"),
    }
    assert shared_runs(modules)["a.py~b.py"] == [(2, 9, 2, 10)]
    assert "a.py~c.py" not in shared_runs(modules)

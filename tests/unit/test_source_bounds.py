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
shared/domain.py=413
shared/store/event_store.py=327
services/command_api/appender.py=424
services/command_api/import_routes.py=327
tests/bench/postings.py=694
tests/bench/postings.py::measure=69
tests/e2e/conftest.py=496
tests/e2e/test_clients.py=583
tests/e2e/test_errors.py=523
tests/e2e/test_errors.py::test_no_odd_input_makes_the_service_answer_500=117
tests/e2e/test_logs.py::test_the_api_writes_one_json_object_per_line_to_a_pipe=62
tests/e2e/test_postings.py=395
tests/e2e/test_scale_out.py::test_three_projectors_share_the_partitions_and_a_sigkill_loses_nothing=106
tests/e2e/test_scale_out.py::test_a_standby_relay_takes_over_when_the_leader_is_killed=79
tests/e2e/test_service.py=340
tests/e2e/test_service.py::test_events_reach_rabbitmq_for_outside_subscribers=71
tests/e2e/test_shutdown.py=329
tests/e2e/test_shutdown.py::test_sigterm_loses_no_acknowledged_command=74
tests/e2e/test_worker_crash_points.py::test_a_relay_killed_between_confirms_and_cursor_republishes_only_that_batch=83
tests/integration/test_as_of.py::test_a_client_and_the_summary_as_of_each_moment=94
tests/integration/test_audit_verify.py=410
tests/integration/test_audit_verify.py::test_read_model_tampering_is_named=76
tests/integration/test_client_http.py=464
tests/integration/test_event_store_integrity.py::test_every_stored_event_hash_verifies_from_the_row_alone=73
tests/integration/test_export.py=357
tests/integration/test_feed.py=333
tests/integration/test_feed.py::test_the_feed_never_skips_an_event_that_commits_late=69
tests/integration/test_feed.py::test_a_late_subscriber_sees_every_event_exactly_once_feed_then_queue=78
tests/integration/test_group_commit.py::test_category_ids_drawn_by_a_failed_batch_are_not_valid_categories=68
tests/integration/test_import.py=688
tests/integration/test_observability.py=438
tests/integration/test_observability.py::test_relay_backlog_and_projection_lag_are_read_at_scrape=77
tests/integration/test_relay.py::test_a_relay_crash_before_its_cursor_update_republishes_and_projects_once=86
tests/integration/test_relay_queues.py::test_events_relayed_before_any_projector_starts_reach_the_read_models=61
tests/integration/test_relay_queues.py::test_an_event_no_queue_takes_is_published_again_not_dropped=64
tests/integration/test_reversals.py=512
tests/integration/test_reversals.py::test_a_reversed_transaction_stays_in_the_statement_beside_its_reversal=95
tests/integration/test_reversals.py::test_a_deposit_reversal_that_would_make_the_deposit_negative_is_refused=62
tests/integration/test_reversals.py::test_bad_reversals_answer_a_clear_4xx_and_write_nothing=61
tests/security/test_secrets_keys.py::test_a_rotation_keeps_every_event_verifiable_and_tampering_found=62
tests/security/test_secrets_keys.py::test_a_development_key_store_verifies_only_below_its_bound=62
tests/unit/test_config.py::test_a_bad_value_is_refused_with_one_line_naming_it=105
tests/unit/test_domain.py=479
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

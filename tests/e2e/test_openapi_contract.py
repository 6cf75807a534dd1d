"""schemathesis against the running service: every documented operation, a bounded
number of generated requests each, answers without a 5xx and as documented.

The service is the e2e session's `ledger run`. Requests carry a real business's
key, and the business holds a category and a client with postings, so that some
generated ids and bodies reach real rows. X-Ledger-Min-Position is pinned to a
position the store has reached: a generated one is mostly far ahead, and its
documented answer is a 503 (with Retry-After) after the read-your-writes bound, which
the strict "no 5xx" check would count.

LEDGER_FUZZ_EXAMPLES (default 15) sets the examples per operation; `make fuzz` runs
many more, and also sends schema-violating requests (negative mode), where only "no
5xx" and the documented status codes are checked. An operation for which no request
could be generated fails instead of passing untested. `make test` also runs the
schemathesis CLI's coverage phase alone, on a time budget; `make fuzz` runs every
phase.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.api_docs import openapi
from tests.e2e.conftest import Api, LedgerService

FUZZ = os.environ.get("LEDGER_FUZZ", "") == "1"
EXAMPLES = int(os.environ.get("LEDGER_FUZZ_EXAMPLES", "200" if FUZZ else "15"))
POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance]
# Operations no request can violate (no parameter, no body, or only a path that
# takes any string): negative mode skips them by name, and
# test_negative_mode_skips_exactly_the_operations_with_nothing_to_violate keeps this
# list exact. Anywhere else, an operation with no generated request fails.
NOTHING_TO_VIOLATE = frozenset(
    {
        "GET /api/v3/asyncapi.json",
        "GET /api/v3/openapi.json",
        "GET /docs",
        "GET /docs/{asset}",
        "GET /healthz",
        "GET /metrics",
        "GET /readyz",
    }
)
NOTHING_SENT = "no request was generated for this operation"
# The coverage phase's time budget in `make test` (schemathesis --max-time): about
# 15 s on a 2-core machine, 3x that before the budget would cut the phase short.
COVERAGE_BUDGET_S = 45
CLI_CHECKS = ["all"]
# A request valid by its schema may still break a business rule (an unknown category,
# an Idempotency-Key reused with another body): 422, not the 2xx this check expects.
CLI_EXCLUDED = ["positive_data_acceptance"]
# A refused request: 412 (a stale or malformed If-Match) and 413 count as refusals.
CLI_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [
  "400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422",
  "428", "429",
]
"""


class Failure(msgspec.Struct, frozen=True):
    operation: str
    mode: str
    error: str


def _run_operation(
    operation: Any,
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    statuses: set[int],
) -> Failure | None:
    """Up to EXAMPLES generated cases against the service (adding each answer's
    status to `statuses`); the first failure. An operation for which no request
    could be generated (hypothesis's Unsatisfiable) is a failure too: it was not
    tested, and must not pass as if it had been."""
    checks = POSITIVE_CHECKS if mode == GenerationMode.POSITIVE else NEGATIVE_CHECKS
    sent = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not FUZZ,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        statuses.add(response.status_code)
        case.validate_response(response, checks=checks, headers=headers)

    try:
        run()
    except Unsatisfiable:
        return Failure(operation=operation.label, mode=mode.value, error=NOTHING_SENT)
    except (Exception, BaseExceptionGroup) as error:  # reported per operation
        return Failure(operation=operation.label, mode=mode.value, error=str(error))
    if sent == 0:
        return Failure(operation=operation.label, mode=mode.value, error=NOTHING_SENT)
    return None


def _run_all(
    base_url: str, headers: dict[str, str]
) -> tuple[dict[str, set[int]], list[Failure]]:
    """Every operation's statuses seen, and the failures."""
    modes = [GenerationMode.POSITIVE]
    if FUZZ:
        modes.append(GenerationMode.NEGATIVE)
    statuses: dict[str, set[int]] = {}
    failures: list[Failure] = []
    for operation in _operations():
        seen = statuses.setdefault(operation.label, set())
        for mode in modes:
            if (
                mode == GenerationMode.NEGATIVE
                and operation.label in NOTHING_TO_VIOLATE
            ):
                continue
            failure = _run_operation(operation, mode, base_url, headers, seen)
            if failure is not None:
                failures.append(failure)
    return statuses, failures


def _operations() -> list[Any]:
    schema = schemathesis.openapi.from_dict(msgspec.json.decode(openapi.rendered()))
    return [result.ok() for result in schema.get_all_operations()]


async def _seed(api: Api) -> int:
    """A category, a client with a transaction and a deposit, for ids to hit; the
    position of the last write (202, written but not yet visible, is fine here)."""
    client_id = 0
    position = 0
    for path, body in [
        ("/api/v3/clients/category", {"name": "Contract"}),
        ("/api/v3/clients", {"business_name": "Contract client"}),
        ("/api/v3/clients/{id}/transactions", {"type": "debit", "amount": "120.50"}),
        ("/api/v3/clients/{id}/deposits", {"type": "debit", "amount": 30}),
    ]:
        reply = await api.post(path.format(id=client_id), body)
        assert reply.status in (201, 202), reply.body
        if path == "/api/v3/clients":
            client_id = reply.body["id"]
        position = int(reply.headers["X-Ledger-Position"])
    return position


async def test_every_operation_answers_as_documented_and_never_5xx(
    ledger: LedgerService, api: Api
) -> None:
    position = await _seed(api)
    headers = {
        "Authorization": f"Bearer {api.key}",
        "X-Ledger-Min-Position": str(position),
    }
    statuses, failures = await asyncio.to_thread(_run_all, ledger.base_url, headers)
    assert len(statuses) == 30
    # The key reached the service: no operation answered only 401, and these
    # answered 2xx to generated requests.
    assert [label for label, seen in statuses.items() if seen <= {401}] == []
    for label in (
        "GET /api/v3/clients",
        "GET /api/v3/clients/summary",
        "GET /api/v3/clients/categories",
        "GET /api/v3/audit/verify",
        "GET /api/v3/events",
        "POST /api/v3/clients",
        "GET /healthz",
        "GET /docs",
    ):
        assert {200, 201} & statuses[label], (label, statuses[label])
    report = "\n\n".join(
        f"{failure.operation} ({failure.mode}):\n{failure.error}"
        for failure in failures
    )
    assert failures == [], f"{report}\n\n{ledger.log_tail()}"


def test_an_operation_with_no_generated_request_fails_the_contract() -> None:
    """Proves an operation the contract test cannot generate a request for is a
    failure, not a silent pass, by running negative mode on GET /healthz (nothing to
    violate: hypothesis raises Unsatisfiable before any request is sent)."""
    [healthz] = [op for op in _operations() if op.label == "GET /healthz"]
    statuses: set[int] = set()
    failure = _run_operation(
        healthz, GenerationMode.NEGATIVE, "http://127.0.0.1:9", {}, statuses
    )
    assert failure == Failure(
        operation="GET /healthz", mode="negative", error=NOTHING_SENT
    )
    assert statuses == set()


def test_negative_mode_skips_exactly_the_operations_with_nothing_to_violate() -> None:
    """Proves NOTHING_TO_VIOLATE names exactly the operations negative mode cannot
    generate a request for, so the skip hides no operation that could be tested, by
    generating (not sending) up to 5 negative cases for every operation."""
    unsatisfiable: set[str] = set()
    generated: list[str] = []
    for operation in _operations():
        strategy = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)

        @settings(
            max_examples=5,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def generate(case: Any) -> None:
            generated.append(case.operation.label)

        try:
            generate()
        except Unsatisfiable:
            unsatisfiable.add(operation.label)
    assert unsatisfiable == NOTHING_TO_VIOLATE
    assert set(generated) == {op.label for op in _operations()} - NOTHING_TO_VIOLATE


async def test_the_schemathesis_cli_coverage_phase_finds_nothing(
    ledger: LedgerService, api: Api, tmp_path: Path
) -> None:
    """Proves every operation answers as documented to the CLI's coverage phase
    (boundary and just-outside values of every parameter and body, valid and
    invalid), with every check that applies, by running that phase alone in `make
    test`, on a budget of COVERAGE_BUDGET_S; `make fuzz` runs it with the others."""
    budget = ["--max-time", str(COVERAGE_BUDGET_S)]
    done = await _schemathesis_cli(
        ledger, api, tmp_path, ["--phases", "coverage", *budget]
    )
    assert done.returncode == 0, f"{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    # The budget did not cut the phase short: it tested all 30 operations.
    assert "Tested: 30\n" in done.stdout, done.stdout[-20000:]
    assert "✅ 30 passed" in done.stdout, done.stdout[-20000:]


@pytest.mark.skipif(not FUZZ, reason="`make fuzz` (LEDGER_FUZZ=1) runs it")
async def test_the_schemathesis_cli_finds_nothing_with_every_phase(
    ledger: LedgerService, api: Api, tmp_path: Path
) -> None:
    """`make fuzz`: the schemathesis CLI with its examples, coverage (boundary values
    of every parameter and body) and fuzzing phases, and every check that applies."""
    phases = ["--phases", "examples,coverage,fuzzing", "--max-examples", str(EXAMPLES)]
    done = await _schemathesis_cli(ledger, api, tmp_path, phases)
    assert done.returncode == 0, f"{done.stdout[-20000:]}\n{done.stderr[-5000:]}"


async def _schemathesis_cli(
    ledger: LedgerService, api: Api, tmp_path: Path, phases: list[str]
) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` against the service with the seeded business's key, the
    given phase options, and every check that applies."""
    position = await _seed(api)
    document = tmp_path / "openapi.json"
    document.write_bytes(openapi.rendered())
    config = tmp_path / "schemathesis.toml"
    config.write_text(CLI_CONFIG)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        str(document),
        "--url",
        ledger.base_url,
        "--header",
        f"Authorization: Bearer {api.key}",
        "--header",
        f"X-Ledger-Min-Position: {position}",
        *phases,
        "--workers",
        "1",
        "--checks",
        ",".join(CLI_CHECKS),
        "--exclude-checks",
        ",".join(CLI_EXCLUDED),
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    return await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=tmp_path,  # its own state folder (.schemathesis) goes there
        capture_output=True,
        text=True,
        check=False,
    )

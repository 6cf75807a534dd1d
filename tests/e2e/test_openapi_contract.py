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
could be generated fails instead of passing untested. The schemathesis CLI runs in
test_openapi_cli.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
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
from tests.e2e.contract_seed import EXAMPLES, FUZZ, seed
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import LedgerService

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


async def test_every_operation_answers_as_documented_and_never_5xx(
    ledger: LedgerService, api: Api
) -> None:
    position = await seed(api)
    headers = {
        "Authorization": f"Bearer {api.key}",
        "X-Ledger-Min-Position": str(position),
    }
    statuses, failures = await asyncio.to_thread(_run_all, ledger.base_url, headers)
    assert len(statuses) == 45
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

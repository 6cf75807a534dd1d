"""The schemathesis CLI against the running service (the e2e session's `ledger run`),
with every check that applies, pinned to the seeded business's key and position.

`make test` runs its coverage phase alone (boundary and just-outside values of every
parameter and body) on a time budget; `make fuzz` runs the examples, coverage and
fuzzing phases at length.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from services.api_docs import openapi
from tests.e2e.contract_seed import EXAMPLES, FUZZ, seed
from tests.e2e.ledger_api import Api
from tests.e2e.supervisor import LedgerService

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
    # The budget did not cut the phase short: it tested all 45 operations.
    assert "Tested: 45\n" in done.stdout, done.stdout[-20000:]
    assert "✅ 45 passed" in done.stdout, done.stdout[-20000:]


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
    position = await seed(api)
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

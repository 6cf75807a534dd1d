"""Issue 9, secrets: no `ledger` process starts with a weak hash-chain key, and the
local key that `make run` uses is made once, kept, and said where."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shared.keyring import DEVELOPMENT_KEY
from tests.e2e.deadlines import CLI_DEADLINE_S
from tests.e2e.supervisor import REPOSITORY
from tests.support.environment import free_port

HOW = (
    ": give a random key of at least 32 bytes"
    " (`ledger hmac-key create --file PATH` makes one)"
)


def ledger(command: str, key: str) -> subprocess.CompletedProcess[str]:
    """`ledger COMMAND` with this key and a PostgreSQL that does not answer: a start
    that got past the key would say so (exit 1), not refuse it (exit 2)."""
    port = free_port()
    environment = {
        **{n: v for n, v in os.environ.items() if not n.startswith("LEDGER_")},
        "LEDGER_HMAC_KEY": key,
        "LEDGER_DATABASE_URL": f"postgresql://ledger_app@127.0.0.1:{port}/ledger",
        "LEDGER_ADMIN_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/ledger",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", command],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE_S,
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "key", "reason"),
    [
        ("run", DEVELOPMENT_KEY, "is the built-in development key, which is public"),
        ("api", "change-me-local-hmac-key", "is a placeholder from the deploy files"),
        ("relay", "k" * 31, "is shorter than 32 bytes"),
    ],
)
async def test_ledger_refuses_to_start_with_a_weak_hmac_key(
    command: str, key: str, reason: str
) -> None:
    """`ledger run`, `ledger api` and `ledger relay` given the development key, a
    deploy placeholder or a 31-byte key exit 2 with one line, before connecting."""
    done = await asyncio.to_thread(ledger, command, key)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"ledger: LEDGER_HMAC_KEY {reason}{HOW}\n"


async def test_the_local_key_is_made_once_and_said_where(tmp_path: Path) -> None:
    """`ledger hmac-key create --file PATH` (what `make run` calls) writes a random key
    owner-only and says where; the second call keeps it and says so."""
    path = tmp_path / "ledger" / "hmac.key"
    command = [sys.executable, "-m", "services.cli.main", "hmac-key", "create"]
    made, kept = [
        await asyncio.to_thread(
            subprocess.run,
            [*command, "--file", str(path)],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=False,
            timeout=CLI_DEADLINE_S,
        )  # fmt: skip
        for _ in range(2)
    ]
    assert (made.returncode, made.stdout, made.stderr) == (
        0,
        "",
        f"ledger: created a new random HMAC key in {path}; back it up: the audit"
        " verifies the events it hashes only with it\n",
    )
    assert (kept.returncode, kept.stderr) == (
        0,
        f"ledger: the HMAC key is in {path} (kept)\n",
    )
    assert len(path.read_text().strip()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

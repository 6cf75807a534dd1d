"""`make bench`'s peer: the `eventsourcing` library's bank-account ledger (issue 12).

The library (9.5, the bench extra only, never a runtime dependency) used in its own
idiom: an Aggregate with Opened, Debited and Credited events, an Application that
gets, changes and saves it, PostgreSQL through psycopg's binary build, the library's
defaults otherwise (its connection pool of 5 plus 10 overflow, no snapshots, no
aggregate cache, no projections). It runs on a throwaway database of the same
PostgreSQL server, created and dropped here as tests/support/environment.py does for
ours, after our service has stopped, so that our idle processes do not share its
cores.

As many accounts as our bench has clients are opened before the timed part; then
each of `concurrency` threads posts a Debited of 100 minor units (1.00, our bench's
amount) to a random account in a loop until the deadline. A version conflict (two
threads on one account) is retried, as our service retries its own; a posting's
latency includes its retries. One durable commit per posting: no publication, no
read model. `vs eventsourcing` = our postings/s at a concurrency / the peer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import asyncpg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import PersistenceError, RecordConflictError

from services.bootstrap import create_database
from shared.store.postgres import database_name, with_database
from tests.bench.cpu_use import Watch, measured, peer_cpu_line
from tests.bench.figures import Phase

AMOUNT_MINOR = 100
CONFLICT_RETRIES_MAX = 8


class BankAccount(Aggregate):
    """The library's bank-account aggregate: a balance in minor units."""

    @event("Opened")
    def __init__(self, name: str) -> None:
        self.name = name
        self.balance_minor = 0

    @event("Debited")
    def debit(self, amount_minor: int) -> None:
        self.balance_minor += amount_minor

    @event("Credited")
    def credit(self, amount_minor: int) -> None:
        self.balance_minor -= amount_minor


class BankAccounts(Application[uuid.UUID]):
    """Open an account; debit one: get it from the repository, change it, save it."""

    def open_account(self, name: str) -> uuid.UUID:
        account = BankAccount(name)
        self.save(account)
        return account.id

    def debit(self, account_id: uuid.UUID, amount_minor: int) -> None:
        account: BankAccount = self.repository.get(account_id)
        account.debit(amount_minor)
        self.save(account)


def persistence(server_url: str, database: str) -> dict[str, str]:
    """The library's PostgreSQL settings (its environment variables, passed to the
    Application rather than set in ours) for `database` on the bench's server."""
    url = urlsplit(server_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": database,
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
    }


@contextlib.asynccontextmanager
async def peer_database(server_url: str) -> AsyncIterator[str]:
    """A throwaway database on the bench's server (its URL), dropped at the end."""
    url = with_database(server_url, f"ledger_test_bench_peer_{uuid.uuid4().hex[:12]}")
    await create_database(url)
    try:
        yield url
    finally:
        conn = await asyncpg.connect(with_database(server_url, "postgres"))
        try:
            await conn.execute(
                f'DROP DATABASE IF EXISTS "{database_name(url)}" WITH (FORCE)'
            )
        finally:
            await conn.close()


@dataclass
class PeerPhase(Phase):
    """A peer phase, with the version conflicts its threads retried."""

    conflicts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_once(app: BankAccounts, account_id: uuid.UUID) -> tuple[bool, int]:
    """Debit one account, retrying a version conflict; (posted, conflicts). Another
    database error fails the posting, counted as ours are, and the thread goes on."""
    for attempt in range(CONFLICT_RETRIES_MAX):
        try:
            app.debit(account_id, AMOUNT_MINOR)
            return True, attempt
        except RecordConflictError:  # before PersistenceError: IntegrityError is both
            continue
        except PersistenceError:
            return False, attempt
    return False, CONFLICT_RETRIES_MAX


def post_for(
    app: BankAccounts,
    accounts: Sequence[uuid.UUID],
    deadline: float,
    phase: PeerPhase,
    seed: int,
) -> None:
    """One thread: debit random accounts until the deadline."""
    rng = random.Random(seed)
    latencies: list[float] = []
    failed = conflicts = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        posted, retried = post_once(app, rng.choice(accounts))
        conflicts += retried
        if posted:
            latencies.append(time.perf_counter() - started)
        else:
            failed += 1
    with phase.lock:
        phase.latencies += latencies
        phase.count += len(latencies)
        phase.failed += failed
        phase.conflicts += conflicts


def run_phase(
    app: BankAccounts,
    accounts: Sequence[uuid.UUID],
    concurrency: int,
    seconds: float,
    watch: Watch,
) -> PeerPhase:
    """`concurrency` threads posting for `seconds`, CPU measured over them."""
    phase = PeerPhase()
    with measured(phase, watch):
        deadline = time.perf_counter() + seconds
        threads = [
            threading.Thread(target=post_for, args=(app, accounts, deadline, phase, n))
            for n in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return phase


def run_peer_phases(
    url: str,
    server_url: str,
    accounts_count: int,
    concurrencies: Sequence[int],
    seconds: float,
) -> dict[int, PeerPhase]:
    """Open the accounts, then each concurrency's phase; the phases by concurrency.
    CPU is the bench process's own (the library's threads) and PostgreSQL's."""
    database = database_name(url)
    watch = Watch(supervisor=os.getpid(), database=database)  # no children of ours
    with BankAccounts(env=persistence(server_url, database)) as app:
        started = time.perf_counter()
        accounts = [
            app.open_account(f"Peer account {n}") for n in range(accounts_count)
        ]
        print(
            f"eventsourcing: opened {len(accounts)} accounts in "
            f"{time.perf_counter() - started:.1f} s"
        )
        phases: dict[int, PeerPhase] = {}
        for concurrency in concurrencies:
            phases[concurrency] = run_phase(app, accounts, concurrency, seconds, watch)
            phase = phases[concurrency]
            print(f"  eventsourcing c={concurrency}  {phase.figures()}")
            print(f"    {phase.conflicts} version conflicts retried")
            print(f"    cpu (cores): {peer_cpu_line(phase)}")
    return phases


async def measure_peer(
    server_url: str, accounts_count: int, concurrencies: Sequence[int], seconds: float
) -> dict[int, PeerPhase]:
    """The peer's phases on a throwaway database of the bench's server."""
    async with peer_database(server_url) as url:
        return await asyncio.to_thread(
            run_peer_phases, url, server_url, accounts_count, concurrencies, seconds
        )

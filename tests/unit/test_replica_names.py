"""A replica's name in the rotation table, /readyz and /metrics: host:port/database,
never its user or password."""

from __future__ import annotations

from services.http.replica_polls import replica_name


def test_a_replica_is_named_by_host_port_and_database_without_credentials() -> None:
    """Given URLs with a password, without a port, without a database, the name is
    host:port/database with PostgreSQL's defaults filled in."""
    assert replica_name("postgresql://app:s3cret@db-r1:5433/ledger") == (
        "db-r1:5433/ledger"
    )
    assert replica_name("postgres://app@db-r2/ledger") == "db-r2:5432/ledger"
    assert replica_name("postgresql://app@db-r3:6000") == "db-r3:6000/postgres"

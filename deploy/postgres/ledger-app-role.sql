-- Compose only: runs once, when the PostgreSQL volume is first initialised
-- (/docker-entrypoint-initdb.d). The migrations create the service's role `ledger_app`
-- with LOGIN and no password (on the local trust-auth server that is enough); the
-- official image asks for a password on TCP connections (scram-sha-256), so the role
-- is made here first, with the password that compose.yaml's LEDGER_DATABASE_URL
-- carries. The migration's CREATE ROLE then finds it and moves on (duplicate_object).
-- A local-only placeholder, not a secret: change both together for anything shared.
CREATE ROLE ledger_app LOGIN PASSWORD 'ledger-app-local';

-- Read replicas: which hot standbys are in the query routes' rotation
-- (services/http/replica_rotation.py holds the protocol and why it is safe).
--
-- The state lives here, on the primary, so that every API process routes by the
-- same rotation: a command answered by one process without waiting for a replica
-- that process took out must not be followed by a read another process sends there.
-- `name` is the replica's host:port/database (never its password). `state`: `in`
-- (readers may use it; writers wait for it), `joining` (writers wait for it, readers
-- do not use it yet), `out` (neither). `changed_at` is the primary's clock at the
-- change: writers still wait for a replica that went out less than a view's lifetime
-- ago, and it is the token a change is made against (compare and set).
CREATE TABLE read_replicas (
    name text PRIMARY KEY,
    state text NOT NULL DEFAULT 'out' CHECK (state IN ('in', 'joining', 'out')),
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
GRANT SELECT, INSERT, UPDATE ON read_replicas TO ledger_app;

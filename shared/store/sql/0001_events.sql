-- The event store: the only source of truth. Append-only, hash-chained per stream.

DO $$
BEGIN
    CREATE ROLE ledger_app LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- the role is cluster-wide; another database's migration made it
END
$$;

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    business_id     bigint      NOT NULL,
    stream_id       text        NOT NULL,
    version         integer     NOT NULL CHECK (version >= 1),
    type            text        NOT NULL,
    schema_version  integer     NOT NULL,
    payload         jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- The writing transaction's id. Readers that follow the global order read only
    -- rows whose transaction is older than every transaction still running
    -- (pg_snapshot_xmin), ordered by (transaction_id, position): a row that commits
    -- late, after a higher position committed, is then never skipped (see read_after).
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    hash            text        NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX events_by_transaction ON events (transaction_id, position);
CREATE INDEX events_by_business ON events (business_id, position);

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only (% refused)', TG_OP;
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Ids the appender draws before deciding a command (gaps are harmless).
CREATE SEQUENCE client_id_seq;
CREATE SEQUENCE account_id_seq START 1000;
CREATE SEQUENCE category_id_seq;
CREATE SEQUENCE entry_id_seq;

-- Write-side lookups, written in the same transaction as the events they guard.
CREATE TABLE category_names (
    business_id bigint  NOT NULL,
    name_key    text    NOT NULL,
    category_id bigint  NOT NULL,
    PRIMARY KEY (business_id, name_key)
);

CREATE TABLE idempotency_keys (
    business_id   bigint      NOT NULL,
    key           text        NOT NULL,
    request_hash  text        NOT NULL,
    status        integer     NOT NULL,
    body          bytea       NOT NULL,
    position      bigint      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

GRANT SELECT, INSERT ON events TO ledger_app;
GRANT SELECT, INSERT ON category_names TO ledger_app;
GRANT SELECT, INSERT, DELETE ON idempotency_keys TO ledger_app;
GRANT USAGE, SELECT ON client_id_seq, account_id_seq, category_id_seq, entry_id_seq
    TO ledger_app;

-- Personal data at rest (shared/personal_data.py). An event's personal fields are
-- stored blank in its payload and sealed together in `sealed` (NULL when it has none
-- set, and on every row written before this column). Adding a nullable column without
-- a default rewrites no row, so the append-only trigger (0001) is not involved.
ALTER TABLE events ADD COLUMN sealed bytea;

-- Each client's key, wrapped by the master key (the master key's id in its first 8
-- bytes), written in the same statement as the client's client.created event; never
-- in an event, so that destroying it (erasure, issue 13) leaves every sealed field of
-- the client unreadable.
CREATE TABLE client_keys (
    business_id bigint      NOT NULL,
    stream_id   text        NOT NULL,
    wrapped     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, stream_id)
);

GRANT SELECT, INSERT ON client_keys TO ledger_app;

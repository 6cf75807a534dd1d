-- Where the relay has published up to, and what each projection has applied.

CREATE TABLE relay_cursor (
    relay           text    PRIMARY KEY,
    transaction_id  xid8    NOT NULL,
    position        bigint  NOT NULL
);

-- One row per projection and stream: the last version applied. Written in the same
-- transaction as the read-model change it records, so an event applies exactly once.
CREATE TABLE projection_tracking (
    projection  text    NOT NULL,
    stream_id   text    NOT NULL,
    version     integer NOT NULL,
    PRIMARY KEY (projection, stream_id)
);

CREATE TABLE projection_checkpoint (
    projection     text        PRIMARY KEY,
    position_last  bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE ON relay_cursor, projection_tracking,
    projection_checkpoint TO ledger_app;

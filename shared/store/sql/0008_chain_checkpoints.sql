-- The last checkpointed head (version and hash) of every stream, kept outside the
-- events table: the audit finds a stream whose last events were deleted because its
-- store ends below the head recorded here (and in the `ledger.checkpoint` events that
-- subscribers hold a copy of).
CREATE TABLE chain_checkpoints (
    stream_id        text        PRIMARY KEY,
    business_id      bigint      NOT NULL,
    version          integer     NOT NULL,
    hash             text        NOT NULL,
    checkpoint_id    text        NOT NULL,
    checkpointed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chain_checkpoints_by_business ON chain_checkpoints (business_id);

GRANT SELECT, INSERT, UPDATE ON chain_checkpoints TO ledger_app;

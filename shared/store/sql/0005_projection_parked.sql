-- Events a projection could not apply after its retries: recorded, never dropped.
-- A later event of the same stream retries a parked one first (gap fill), and an
-- operator can see here which streams are stuck and why.
CREATE TABLE projection_parked (
    projection  text        NOT NULL,
    event_id    uuid        NOT NULL,
    stream_id   text        NOT NULL,
    version     integer     NOT NULL,
    position    bigint      NOT NULL,
    error       text        NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, event_id)
);

GRANT SELECT, INSERT, DELETE ON projection_parked TO ledger_app;

-- Spreadsheet imports of clients: one row per committed import, written in the
-- import's own transaction (with its events), so a file uploaded twice to a business
-- is recognised by its sha256 and the status route can report progress.
CREATE TABLE client_imports (
    import_id       text        PRIMARY KEY,
    business_id     bigint      NOT NULL REFERENCES businesses,
    file_sha256     text        NOT NULL,
    category_id     bigint      NOT NULL,
    imported        integer     NOT NULL,
    total_unpaid    bigint      NOT NULL,
    last_stream_id  text        NOT NULL,
    last_version    integer     NOT NULL,
    -- The writing transaction (as in events): the status route counts the import's
    -- clients the projections have reached through events_by_transaction.
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX client_imports_by_file ON client_imports (business_id, file_sha256);

GRANT SELECT, INSERT ON client_imports TO ledger_app;

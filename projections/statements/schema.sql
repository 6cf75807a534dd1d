-- Read model of the statements projection: every receivable transaction and every
-- deposit posting, ordered per client by (date, position). Running balances are
-- window sums at query time, so a back-dated posting moves later rows' balance_after.

CREATE TABLE rm_transactions (
    transaction_id  bigint      PRIMARY KEY,
    business_id     bigint      NOT NULL,
    client_id       bigint      NOT NULL,
    entry_type      text        NOT NULL,
    amount_minor    bigint      NOT NULL,
    date            date        NOT NULL,
    description     text        NOT NULL,
    reference       text        NOT NULL,
    created_at      timestamptz NOT NULL,
    position        bigint      NOT NULL
);
CREATE INDEX rm_transactions_by_client ON rm_transactions (client_id, date, position);

CREATE TABLE rm_deposits (
    deposit_id      bigint      PRIMARY KEY,
    business_id     bigint      NOT NULL,
    client_id       bigint      NOT NULL,
    entry_type      text        NOT NULL,
    amount_minor    bigint      NOT NULL,
    date            date        NOT NULL,
    description     text        NOT NULL,
    created_at      timestamptz NOT NULL,
    position        bigint      NOT NULL
);
CREATE INDEX rm_deposits_by_client ON rm_deposits (client_id, date, position);

GRANT SELECT, INSERT, UPDATE, DELETE ON rm_transactions, rm_deposits TO ledger_app;

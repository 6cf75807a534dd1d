-- Read model of the balances projection: clients with their figures, and categories
-- with their customer counts. Summaries aggregate rm_clients at query time (exact
-- numeric sums). Disposable: a replay of the events rebuilds it.

CREATE TABLE rm_categories (
    category_id     bigint      PRIMARY KEY,
    business_id     bigint      NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    customer_count  integer     NOT NULL DEFAULT 0
);
CREATE INDEX rm_categories_by_business ON rm_categories (business_id, category_id);

CREATE TABLE rm_clients (
    client_id           bigint      PRIMARY KEY,
    business_id         bigint      NOT NULL,
    account_id          bigint      NOT NULL,
    category_id         bigint      NOT NULL,
    first_name          text        NOT NULL,
    last_name           text        NOT NULL,
    phone_number        text        NOT NULL,
    business_name       text        NOT NULL,
    business_address    text        NOT NULL,
    business_phone      text        NOT NULL,
    business_location   text        NOT NULL,
    business_email      text        NOT NULL,
    archived            boolean     NOT NULL DEFAULT false,
    deleted             boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    debit_minor         numeric(38, 0) NOT NULL DEFAULT 0,
    credit_minor        numeric(38, 0) NOT NULL DEFAULT 0,
    deposit_minor       numeric(38, 0) NOT NULL DEFAULT 0,
    deposit_account_id  bigint,
    version             integer     NOT NULL
);
CREATE INDEX rm_clients_by_business ON rm_clients (business_id, client_id)
    WHERE NOT deleted;

GRANT SELECT, INSERT, UPDATE, DELETE ON rm_categories, rm_clients TO ledger_app;

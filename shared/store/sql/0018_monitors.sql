-- The monitor process's own state (services/monitor/), committed with its cursor
-- (relay_cursor 'monitors') in one transaction per batch:
-- * monitor_watch: each monitor it has seen created (and deleted), by position;
-- * monitor_figures: the figures of every client of a business that has had a
--   monitor, as of the cursor (other businesses' events are not read at all);
-- * monitor_triggers: each crossing recorded as a monitor.triggered event, keyed by
--   (monitor, client, position): a replay that decides a crossing again finds it
--   here and appends nothing.
CREATE TABLE monitor_watch (
    monitor_id text PRIMARY KEY,
    business_id bigint NOT NULL,
    definition jsonb NOT NULL,
    created_position bigint NOT NULL,
    deleted_position bigint
);
CREATE TABLE monitor_figures (
    client_id bigint PRIMARY KEY,
    business_id bigint NOT NULL,
    category_id bigint NOT NULL,
    balance_minor bigint NOT NULL,
    deposit_minor bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false
);
CREATE TABLE monitor_triggers (
    monitor_id text NOT NULL,
    client_id bigint NOT NULL,
    position bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (monitor_id, client_id, position)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON monitor_watch, monitor_figures TO ledger_app;
GRANT SELECT, INSERT ON monitor_triggers TO ledger_app;

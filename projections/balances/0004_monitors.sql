-- Balance monitors (issue 14): what GET /api/v3/monitors lists. monitor.created
-- inserts a row, monitor.deleted removes it; their crossings are the monitor
-- process's (services/monitor/), recorded as monitor.triggered events.
CREATE TABLE rm_monitors (
    monitor_id text PRIMARY KEY,
    business_id bigint NOT NULL,
    scope text NOT NULL,
    client_id bigint,
    category_id bigint,
    figure text NOT NULL,
    condition text NOT NULL,
    threshold_minor bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX rm_monitors_by_business ON rm_monitors (business_id, created_at, monitor_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON rm_monitors TO ledger_app;

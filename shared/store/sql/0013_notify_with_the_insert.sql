-- Every statement that inserts events also sends NOTIFY ledger_events (delivered at
-- COMMIT, as NOTIFY always is), from the trigger that takes the commit-order lock
-- (0011): no writer can forget to wake the relay, and no writer spends a round trip
-- on it (services/command_api/commit.py sent `SELECT pg_notify(...)` itself).
CREATE OR REPLACE FUNCTION events_position_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7170005);
    PERFORM pg_notify('ledger_events', '');
    RETURN NULL;
END
$$;

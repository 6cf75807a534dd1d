-- Positions in commit order: every statement that inserts events first takes one
-- transaction-level advisory lock (7170005), held until its transaction ends, and only
-- then draws positions. So a transaction that draws higher positions than another
-- commits after it, and a reader that has seen position P will never see a lower one
-- appear later: `position > cursor` is the whole rule. Publication depends only on the
-- ledger's own commits; before this, readers stopped below the server-wide
-- pg_snapshot_xmin, and any long write transaction anywhere on the server (another
-- database's included) held back publication and every read-your-writes.
--
-- The lock is taken by a statement-level trigger, so no writer can forget it: the
-- appender's batches (one INSERT), an import's COPY, the chain-head checkpoints. It is
-- held from the first row drawn to the COMMIT, so the writer takes it as late as it
-- can: after deciding, just before its events (services/command_api/commit.py).

-- Wait for every transaction still inserting under the old rule, and hold new ones
-- until the cursors below are converted and the trigger is in place.
LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION events_position_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7170005);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_in_commit_order BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_position_lock();

-- Each follower's cursor becomes a position. Under the old rule it was (transaction
-- id, position): every row at or below it was read. The new cursor is just below the
-- lowest position not yet read, so nothing is skipped; rows above it that were read
-- already are read again (published again: at-least-once, and consumers dedupe).
UPDATE relay_cursor c
SET position = coalesce(
    (SELECT min(e.position) - 1 FROM events e
     WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position)),
    (SELECT max(e.position) FROM events e),
    0
);
ALTER TABLE relay_cursor DROP COLUMN transaction_id;

-- The feed now reads one business's events by position (events_by_business); the
-- index on (business_id, transaction_id, position) served the old order only.
DROP INDEX events_by_business_transaction;

-- A keyed command first answered 202 (its events not yet visible) records that, so
-- that a retry with the same Idempotency-Key replays the same status.
GRANT UPDATE (status) ON idempotency_keys TO ledger_app;

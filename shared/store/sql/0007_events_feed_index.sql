-- The event feed (GET /api/v3/events) reads one business's events in the relay's
-- commit-safe order, (transaction_id, position), from a cursor: this index serves
-- that range scan without sorting the business's whole history.
CREATE INDEX events_by_business_transaction
    ON events (business_id, transaction_id, position);

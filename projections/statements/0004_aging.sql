-- Aged receivables (services/query_api/aging_report.py) add up one business's lines
-- at once. Lines are now indexed by business first: a small business's report reads
-- its own lines by index, a big one's scans the table, and a statement (client and
-- business both given) is served as before, so the index replaces the one by client
-- rather than adding a second to every insert. The report leaves out reversals and
-- what they reverse: the few reversal lines get a partial index of their own.
CREATE INDEX rm_transactions_by_business
    ON rm_transactions (business_id, client_id, date, position);
DROP INDEX rm_transactions_by_client;
CREATE INDEX rm_transactions_reversals ON rm_transactions (business_id)
    INCLUDE (reversal_of, date) WHERE reversal_of IS NOT NULL;

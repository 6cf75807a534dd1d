-- Reversals (transaction.reversed, deposit.reversed): a reversal is a line of its own
-- that names the line it reverses, and the reversed line is marked. Both default so
-- that the rows already projected read as they did (not reversed, no reversal).

ALTER TABLE rm_transactions
    ADD COLUMN reversed     boolean NOT NULL DEFAULT false,
    ADD COLUMN reversal_of  bigint;

ALTER TABLE rm_deposits
    ADD COLUMN reversed     boolean NOT NULL DEFAULT false,
    ADD COLUMN reversal_of  bigint;

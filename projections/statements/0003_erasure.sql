-- Erasure (client.erased): an erased client's lines keep their figures; their
-- description and reference become NULL (a reversal's reason is its description).
ALTER TABLE rm_transactions
    ALTER COLUMN description DROP NOT NULL,
    ALTER COLUMN reference DROP NOT NULL;
ALTER TABLE rm_deposits
    ALTER COLUMN description DROP NOT NULL;

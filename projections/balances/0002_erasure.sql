-- Erasure (client.erased): an erased client keeps its row and figures, its personal
-- fields become NULL (the answers show null) and `erased` says so.
ALTER TABLE rm_clients
    ADD COLUMN erased boolean NOT NULL DEFAULT false,
    ALTER COLUMN first_name DROP NOT NULL,
    ALTER COLUMN last_name DROP NOT NULL,
    ALTER COLUMN phone_number DROP NOT NULL,
    ALTER COLUMN business_name DROP NOT NULL,
    ALTER COLUMN business_address DROP NOT NULL,
    ALTER COLUMN business_phone DROP NOT NULL,
    ALTER COLUMN business_location DROP NOT NULL,
    ALTER COLUMN business_email DROP NOT NULL;

-- Which key hashed each event (shared/keyring.py: an id derived from the key, never
-- the key). NULL on rows written before key ids existed: they were hashed without
-- the field and keep verifying as they were (services/audit/chains.py). Adding a
-- nullable column without a default rewrites no row, so the append-only trigger
-- (0001) is not involved; the column is covered by the grants on the table.
ALTER TABLE events ADD COLUMN key_id text;

-- A business's bid (the export route's capability: whoever has it downloads every
-- client's personal data) is stored as its SHA-256, like an API key: someone who can
-- read the businesses table (a backup, a read replica, a leaked dump) cannot turn
-- what they read into export links. The CLI shows a bid once, when it makes it.
-- A bid is 256 random bits, so a fast unsalted hash leaves nothing to brute-force.
-- The existing bids are hashed in place here and keep working as links.

ALTER TABLE businesses ADD COLUMN bid_hash text;
UPDATE businesses SET bid_hash = encode(sha256(convert_to(bid, 'UTF8')), 'hex');
ALTER TABLE businesses ALTER COLUMN bid_hash SET NOT NULL;
ALTER TABLE businesses ADD CONSTRAINT businesses_bid_hash_key UNIQUE (bid_hash);
ALTER TABLE businesses DROP COLUMN bid;

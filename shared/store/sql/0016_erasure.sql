-- Erasure (issue 13): `POST /clients/{id}/erase` destroys the client's key
-- (client_keys, 0015) in the transaction of its client.erased event, and nulls the
-- personal fields of the answers kept for its Idempotency-Keys, which keep their key
-- and status so a retry still replays without applying twice.

-- The stream an answer belongs to (NULL: an answer stored before this column, or one
-- of no client's, an import's): what an erasure looks its answers up by.
ALTER TABLE idempotency_keys ADD COLUMN stream_id text;
CREATE INDEX idempotency_keys_by_stream ON idempotency_keys (business_id, stream_id)
    WHERE stream_id IS NOT NULL;

-- Exactly what an erasure writes besides its event: the key's row goes, and the
-- stored bodies change (0004 granted UPDATE of `status` for 202 answers). Keeping an
-- answer locks its client's key row (FOR KEY SHARE, services/command_api/
-- idempotency.py), which PostgreSQL allows only with an UPDATE privilege on some
-- column: `created_at`'s, the one that guards nothing.
GRANT DELETE ON client_keys TO ledger_app;
GRANT UPDATE (created_at) ON client_keys TO ledger_app;
GRANT UPDATE (body) ON idempotency_keys TO ledger_app;

-- A key goes only with its client's erasure: in the transaction that appended the
-- client.erased event (or with the append-only trigger switched off, as a superuser).
CREATE FUNCTION client_keys_erased_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM events WHERE business_id = OLD.business_id
                   AND stream_id = OLD.stream_id AND type = 'client.erased') THEN
        RAISE EXCEPTION 'the key of % goes only with its client.erased event',
            OLD.stream_id;
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER client_keys_erased_only BEFORE DELETE ON client_keys
    FOR EACH ROW EXECUTE FUNCTION client_keys_erased_only();

-- Erasure (issue 13): `POST /clients/{id}/erase` destroys the client's key
-- (client_keys, 0015) in the transaction of its client.erased event, and nulls the
-- personal fields of the answers kept for its Idempotency-Keys, which keep their key
-- and status so a retry still replays without applying twice.

-- The stream an answer belongs to (NULL: an answer stored before this column, or one
-- of no client's, an import's): what an erasure looks its answers up by.
ALTER TABLE idempotency_keys ADD COLUMN stream_id text;
CREATE INDEX idempotency_keys_by_stream ON idempotency_keys (business_id, stream_id)
    WHERE stream_id IS NOT NULL;

-- A stored answer's body (a JSON object) with its personal fields null; any other
-- body as it is. shared/personal_data.py lists the same fields.
CREATE FUNCTION personal_fields_nulled(body bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE jsonb_typeof(answer) WHEN 'object' THEN convert_to((
        SELECT coalesce(jsonb_object_agg(
                   key,
                   CASE WHEN key = ANY (ARRAY[
                       'first_name', 'last_name', 'phone_number', 'business_name',
                       'business_address', 'business_phone', 'business_location',
                       'business_email', 'description', 'reference', 'reason'])
                        THEN 'null'::jsonb ELSE value END), '{}')
        FROM jsonb_each(answer))::text, 'UTF8') ELSE body END
    FROM (SELECT convert_from(body, 'UTF8')::jsonb AS answer) AS stored
$$;

-- Exactly what an erasure writes besides its event: the key's row goes, and the
-- stored bodies change (0004 granted UPDATE of `status` for 202 answers).
GRANT DELETE ON client_keys TO ledger_app;
GRANT UPDATE (body) ON idempotency_keys TO ledger_app;

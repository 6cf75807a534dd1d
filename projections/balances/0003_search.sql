-- Search (issue 14, services/query_api/client_search.py). Two stored generated columns
-- hold what `?search=` compares, computed by PostgreSQL whenever a client's row is
-- written (the projector's COPY and UPDATEs, a replay's too), so no code path can
-- forget them. The fields are joined with a newline, a character no search may hold
-- (a control character is a 422), so a match never spans two fields; first and last
-- name are joined with a space, so "Kwame Mensah" finds the person. An erased client's
-- personal fields are NULL, so nothing of them is left here to be found.
-- The functions are called by schema (shared/store/sql/0017_search.sql): a replay
-- runs this file with the search_path on its own schema alone.
--
-- On a database that already has rm_clients, adding a stored generated column
-- rewrites the table and building the index reads it whole, both under locks that
-- stop the projector and the API's reads of it until this migration commits (seconds
-- for 100,000 clients).
ALTER TABLE rm_clients
    ADD COLUMN search_text text GENERATED ALWAYS AS (public.ledger_fold(
        coalesce(first_name, '') || ' ' || coalesce(last_name, '') || E'\n'
        || coalesce(business_name, '') || E'\n' || coalesce(business_email, '')
    )) STORED,
    ADD COLUMN search_phones text GENERATED ALWAYS AS (
        coalesce(public.ledger_phone_forms(phone_number), '') || E'\n'
        || coalesce(public.ledger_phone_forms(business_phone), '')
    ) STORED;

-- GIN trigram index led by business_id, the filter every list query has (btree_gin):
-- a search reads the posting lists of the business's id and of the pattern's
-- trigrams, intersected inside the index, and the table only for the rows both
-- name. Live clients only, like the list. A search that has no trigram (fewer than
-- three characters) cannot use it and reads the business's rows instead.
CREATE INDEX rm_clients_search ON rm_clients USING gin (
    business_id,
    search_text public.gin_trgm_ops,
    search_phones public.gin_trgm_ops
) WHERE NOT deleted;

-- A search of two characters ("qu", the phone digits "24") has no trigram: it is
-- looked up by the pairs of adjacent characters each column holds (public.ledger_pairs),
-- then checked with strpos. (One character is still read from the business's rows.)
CREATE INDEX rm_clients_search_pairs ON rm_clients USING gin (
    business_id,
    public.ledger_pairs(search_text),
    public.ledger_pairs(search_phones)
) WHERE NOT deleted;

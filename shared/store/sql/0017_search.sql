-- Search (issue 14): `GET /api/v3/clients?search=` matches names, phone numbers and
-- e-mail addresses ignoring case and accents, substrings too. The balances read model
-- keeps the folded text in generated columns (projections/balances/0003_search.sql)
-- under GIN trigram indexes; these are the extensions and functions they call. The
-- extensions are contrib modules shipped with the server, trusted (a database owner
-- may create them), and pinned to `public`: the functions and the read model's
-- schema files name them there, whatever the session's search_path (a replay runs
-- those files with the search_path on its own schema alone).
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public;
-- A GIN index leading with business_id (bigint) needs btree_gin's operator classes:
-- the trigram posting lists are then cut to the business inside the index, instead
-- of every business's matches being fetched from the table and thrown away.
CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA public;

-- Text as search compares it: accents off (unaccent's rules: é → e, ß → ss, Ø → O,
-- full-width letters to ASCII), then lower case. unaccent() is STABLE only because
-- its dictionary could be changed or its rules file edited; naming the dictionary
-- by schema and calling it from a function declared IMMUTABLE is what lets a stored
-- generated column and an index use it (the documented way). The body is parsed once,
-- here (SQL-standard body), so it calls exactly these objects whatever the caller's
-- search_path. If unaccent.rules is ever changed (a server upgrade may), the stored
-- columns keep the old folding: `ledger replay --projection balances` recomputes them.
CREATE FUNCTION public.ledger_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

-- A phone number as search compares it: its digits only (spaces, + - ( ) . and
-- anything else dropped), then the country code 233 and trunk zeros dropped from the
-- front, so "024 412 3456", "+233 24 412 3456", "+233 (0)24 412 3456" and
-- "00233244123456" all read 244123456. The query's text is normalised the same way
-- (services/query_api/client_search.py, checked against this function by a test).
CREATE FUNCTION public.ledger_phone_digits(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(regexp_replace($1, '[^0-9]+', '', 'g'), '^0*(233)?0*', '');

-- The service's role computes the columns when its projector writes rm_clients and
-- folds the query's text: EXECUTE on the functions, and on what ledger_fold calls
-- (PUBLIC has both by default; granted here so that a server where PUBLIC's EXECUTE
-- was revoked still works). Dictionaries and operator classes take no privilege.
GRANT EXECUTE ON FUNCTION public.ledger_fold(text), public.ledger_phone_digits(text),
    public.unaccent(regdictionary, text) TO ledger_app;

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

-- A phone number as search compares it: its national significant number, from its
-- digits only (spaces, + - ( ) . and anything else dropped): after the country code
-- when it is dialled internationally (00233…, or 233 and at least nine more digits),
-- without the trunk 0 (dialled as "+233 (0)24…" too), else without the trunk 0
-- alone. A national number may itself begin 233 (Glo's 023 numbers: 0233 456 789).
-- The number is then written the two ways people dial it, with the trunk 0 and with
-- the country code: "024 412 3456", "+233 24 412 3456", "+233 (0)24 412-3456" and
-- "00233244123456" all read "0244123456 233244123456". A search's digits are a plain
-- substring of one of the two however each side wrote the number ("0244", "244123",
-- "+233 24 412", "024 412"), and three of them are a trigram the index has. The
-- space keeps a match from spanning both forms (a search's digits hold none).
-- services/query_api/client_search.py reads a search's digits to match; a test
-- checks the two against each other.
CREATE FUNCTION public.ledger_phone_digits(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE
        WHEN digits ~ '^00233' THEN regexp_replace(digits, '^002330?', '')
        WHEN digits ~ '^233[0-9]{9}' THEN regexp_replace(digits, '^2330?', '')
        ELSE regexp_replace(digits, '^0', '')
    END
    FROM (SELECT regexp_replace($1, '[^0-9]+', '', 'g') AS digits) AS written;
END;
CREATE FUNCTION public.ledger_phone_forms(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE public.ledger_phone_digits($1) WHEN '' THEN ''
        ELSE '0' || public.ledger_phone_digits($1) || ' 233'
            || public.ledger_phone_digits($1) END;

-- Every pair of adjacent characters in a text, once each: what a two-character search
-- is looked up by (projections/balances/0003_search.sql's second index), since
-- pg_trgm has no trigram of it and would read the whole trigram index.
CREATE FUNCTION public.ledger_pairs(text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
BEGIN ATOMIC
    SELECT coalesce(array_agg(DISTINCT substr($1, i, 2)), '{}')
    FROM generate_series(1, length($1) - 1) AS i;
END;

-- The service's role computes the columns when its projector writes rm_clients and
-- folds the query's text: EXECUTE on the functions, and on what ledger_fold calls
-- (PUBLIC has both by default; granted here so that a server where PUBLIC's EXECUTE
-- was revoked still works). Dictionaries and operator classes take no privilege.
GRANT EXECUTE ON FUNCTION public.ledger_fold(text), public.ledger_phone_digits(text),
    public.ledger_phone_forms(text), public.ledger_pairs(text),
    public.unaccent(regdictionary, text) TO ledger_app;

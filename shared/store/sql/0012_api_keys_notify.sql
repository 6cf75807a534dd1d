-- Each API process caches the keys it has verified (services/http/api_key_cache.py),
-- so that a request costs no query for its key. A cached key must stop working as
-- soon as it is revoked: every change to api_keys, or to the businesses the cached
-- answers carry (name, currency, owner), NOTIFYs `ledger_api_keys`, and every API
-- process listening drops its whole cache. PostgreSQL sends a notification only when
-- its transaction commits, and a listener gets it only once that commit is visible
-- to its own snapshots, so a lookup made after the notification arrives sees the
-- change.
--
-- Statement-level triggers: one notification per statement, however many rows it
-- touches (one revocation is one row anyway), and TRUNCATE is covered too. INSERT
-- needs none: a key is cached only once it has been found, and a new key or business
-- changes no answer already cached. Whoever writes the tables (`ledger key revoke`,
-- `ledger business rotate-bid`, an operator's own UPDATE) notifies by the trigger.

CREATE FUNCTION api_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ledger_api_keys', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_notify();
CREATE TRIGGER businesses_changed AFTER UPDATE OR DELETE OR TRUNCATE ON businesses
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_notify();

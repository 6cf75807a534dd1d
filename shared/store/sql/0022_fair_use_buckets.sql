-- Fair use for the whole service (services/http/shared_buckets.py): each token
-- bucket of services/http/fair_use.py (requests per API key, failed authentications
-- per client address, exports per bid) is one row here, shared by every API process.
-- A process leases a few tokens at a time with fair_use_lease() and spends them in
-- memory, so a request costs no query while its process still holds a token; the
-- tokens all processes were granted never exceed what one bucket would have granted.
--
-- UNLOGGED: the table is neither written to the WAL nor replicated, and a crash of the
-- server empties it (every bucket full again: at most one burst more, once). It holds
-- no money, no events, nothing an audit reads; a lease is then one row update with no
-- WAL flush.
--
-- `full_at` is when the bucket will be full again; a row past it says nothing an
-- absent row does not (an absent bucket is full), so fair_use_prune() deletes it: the
-- table holds only the subjects that spent tokens lately, however many addresses a
-- client can invent.
CREATE UNLOGGED TABLE fair_use_buckets (
    kind text NOT NULL,
    subject text NOT NULL,
    tokens double precision NOT NULL,
    updated_at timestamptz NOT NULL,
    full_at timestamptz NOT NULL,
    PRIMARY KEY (kind, subject)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON fair_use_buckets TO ledger_app;

-- Grant up to `wanted` whole tokens from the bucket (kind, subject), refilled at
-- `rate_per_s` up to `burst` since it was last touched (by the server's clock, the
-- same for every process). Returns the tokens granted (0 when it has less than one)
-- and what is left after them, from which the caller computes its Retry-After. The
-- row is locked for the statement (ON CONFLICT ... DO UPDATE): two processes leasing
-- from one bucket take turns, and neither sees tokens the other took.
--
-- The time of a lease is clock_timestamp() when the statement forms its row, but never
-- earlier than the row's updated_at. Not now() alone: that is when the transaction
-- began, and even a statement's own time comes before the row lock it may wait for,
-- so a lease can be granted the row after one that began later (it waited on that
-- one's row lock: the usual case for a busy empty bucket). Its elapsed time was then
-- negative: the refill took tokens away, the grant came out negative (-3 of an empty
-- bucket), what was "left" was more than the row held, and updated_at moved back:
-- tokens made from nothing. With greatest(), that lease sees no time pass, and the
-- time since updated_at is credited to the next lease instead: none is lost or
-- counted twice. And granted >= 0 whatever the arithmetic: a lease never gives tokens
-- back.
CREATE FUNCTION fair_use_lease(
    lease_kind text, lease_subject text, rate_per_s double precision, burst integer,
    wanted integer, OUT granted integer, OUT tokens_left double precision
) LANGUAGE plpgsql AS $$
DECLARE
    available double precision;
    leased_at timestamptz;
BEGIN
    INSERT INTO fair_use_buckets AS b (kind, subject, tokens, updated_at, full_at)
    VALUES (lease_kind, lease_subject, burst, clock_timestamp(), clock_timestamp())
    ON CONFLICT (kind, subject) DO UPDATE
        SET tokens = least(burst, b.tokens + rate_per_s * extract(epoch FROM
                greatest(b.updated_at, excluded.updated_at) - b.updated_at)),
            updated_at = greatest(b.updated_at, excluded.updated_at)
    RETURNING b.tokens, b.updated_at INTO available, leased_at;
    granted := greatest(0, least(wanted, floor(available)))::integer;
    tokens_left := available - granted;
    UPDATE fair_use_buckets SET tokens = tokens_left,
        full_at = leased_at + make_interval(secs => (burst - tokens_left) / rate_per_s)
    WHERE kind = lease_kind AND subject = lease_subject;
END
$$;

CREATE FUNCTION fair_use_prune() RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM fair_use_buckets WHERE full_at < now() RETURNING 1)
    SELECT count(*) FROM gone
$$;

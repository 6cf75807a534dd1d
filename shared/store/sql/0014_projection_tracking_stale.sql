-- A projector batch's tracking rows move only from the versions the batch found (or
-- its projector remembered: projections/tracked_versions.py). When one had moved
-- meanwhile, the batch's statement calls this to fail, inside the statement: a live
-- batch may be that one statement alone, without BEGIN or COMMIT
-- (projections/batch_statement.py), so its read-model writes must not commit when the
-- check fails. SQLSTATE 40001 (serialization_failure): the batch is applied again.
CREATE FUNCTION projection_tracking_stale() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a tracking row moved since its version was read or remembered'
        USING ERRCODE = 'serialization_failure';
END
$$;

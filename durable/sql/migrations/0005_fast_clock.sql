-- durable.now() as PL/pgSQL: its one query keeps a cached plan, while a SQL-language
-- function with a sub-select is neither inlined nor plan-cached before PostgreSQL 18 and
-- was re-planned on every call (about 35 us each, several calls per hot statement).
CREATE OR REPLACE FUNCTION durable.now() RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    shift double precision;
BEGIN
    SELECT offset_seconds INTO shift FROM durable.clock;
    RETURN now() + make_interval(secs => coalesce(shift, 0));
END
$$;

-- Step records are written only through record_step and its kin, whose fence has just
-- found (and key-share locked) the run row; the foreign key's check re-did that on every
-- step (about 25 us). Pruning deletes a run's steps itself.
ALTER TABLE durable.steps DROP CONSTRAINT steps_run_id_fkey;

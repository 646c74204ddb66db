-- History that is dropped whole: the opt-in partitioned layout of durable.steps.
-- Nothing changes for a database that does not opt in (`durable migrate --partitioned`):
-- this migration only adds the settings table and the functions the layout runs on.
--
-- Run ids are UUIDv7 (a 48-bit millisecond timestamp first), so the primary key
-- (run_id, cursor_key) orders steps by the time their run started. Partitioned, steps is
-- RANGE-partitioned by run_id: each partition holds the steps of the runs started in one
-- period, every per-run statement keeps its key (and prunes to one partition), and
-- retention drops a partition whole once every run in it is finished and past retention.
-- Ids that are not time-ordered (a caller's uuid4, or any id outside the created periods)
-- land in steps_default, which the row-by-row prune still serves.

-- One row when the layout is partitioned: the period each partition covers, and how
-- many periods ahead of the clock the engine keeps created.
CREATE TABLE durable.partitioning (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    period_seconds double precision NOT NULL CHECK (period_seconds >= 60),
    ahead integer NOT NULL DEFAULT 3 CHECK (ahead >= 1),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The smallest UUIDv7 of the millisecond `at`: every id generated at or after `at` sorts
-- at or above it (uuid comparison is bytewise), every earlier one below. A partition bound.
CREATE FUNCTION durable.uuid7_floor(at timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0')
        || '70008000000000000000')::uuid
$$;

-- The millisecond a UUIDv7 carries (meaningless for other versions).
CREATE FUNCTION durable.uuid7_time(id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_timestamp(
        ('x' || lpad(substr(replace(id::text, '-', ''), 1, 12), 16, '0'))::bit(64)::bigint
        / 1000.0)
$$;

-- The time partitions of durable.steps with their id bounds and periods, oldest first
-- (the catalog is the only record of them; the default partition is not listed).
CREATE FUNCTION durable.history_partitions()
RETURNS TABLE (name text, lo uuid, hi uuid, starts_at timestamptz, ends_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT c.relname::text, b[1]::uuid, b[2]::uuid,
        durable.uuid7_time(b[1]::uuid), durable.uuid7_time(b[2]::uuid)
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
        'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b
    WHERE i.inhparent = to_regclass('durable.steps') AND b IS NOT NULL
    ORDER BY 2
$$;

-- Create the missing partitions of every period that overlaps [from_at, until_at);
-- returns how many were created (0 when the layout is not partitioned). Each is built
-- beside the table and attached (SHARE UPDATE EXCLUSIVE on steps: writes go on); rows the
-- default partition holds in its range move into it first, in the same transaction.
CREATE FUNCTION durable.ensure_history_partitions(from_at timestamptz, until_at timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    period double precision;
    start_at timestamptz;
    stop_at timestamptz;
    part text;
    made integer := 0;
BEGIN
    SELECT period_seconds INTO period FROM durable.partitioning;
    IF period IS NULL THEN
        RETURN 0;
    END IF;
    -- Every worker runs this: one at a time, so none trips over a partition another creates.
    PERFORM pg_advisory_xact_lock(hashtext('durable.history_partitions'));
    start_at := to_timestamp(floor(extract(epoch FROM from_at) / period) * period);
    WHILE start_at < until_at LOOP
        stop_at := start_at + make_interval(secs => period);
        part := 'steps_' || to_char(start_at AT TIME ZONE 'UTC', 'YYYYMMDD"_"HH24MISS');
        IF to_regclass(format('durable.%I', part)) IS NULL THEN
            EXECUTE format('CREATE TABLE durable.%I '
                '(LIKE durable.steps INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
            EXECUTE format('WITH moved AS (DELETE FROM durable.steps_default '
                'WHERE run_id >= $1 AND run_id < $2 RETURNING *) '
                'INSERT INTO durable.%I SELECT * FROM moved', part)
                USING durable.uuid7_floor(start_at), durable.uuid7_floor(stop_at);
            EXECUTE format('ALTER TABLE durable.steps ATTACH PARTITION durable.%I '
                'FOR VALUES FROM (%L) TO (%L)', part,
                durable.uuid7_floor(start_at), durable.uuid7_floor(stop_at));
            made := made + 1;
        END IF;
        start_at := stop_at;
    END LOOP;
    RETURN made;
END
$$;

-- Switch an empty database to the partitioned layout (idempotent). Refused once any run
-- is stored: converting a large steps table in place rewrites it under an exclusive lock,
-- and its random (v4) ids would all sit in the default partition.
CREATE FUNCTION durable.partition_history(period double precision, ahead integer)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM durable.partitioning) THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM durable.runs) OR EXISTS (SELECT 1 FROM durable.steps) THEN
        RAISE EXCEPTION 'durable.runs already holds runs: the partitioned layout is set up '
            'on an empty database only'
            USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'migrate into a fresh database with --partitioned and move the data over';
    END IF;
    INSERT INTO durable.partitioning (period_seconds, ahead) VALUES (period, ahead);
    ALTER INDEX durable.steps_pkey RENAME TO steps_unpartitioned_pkey;
    ALTER TABLE durable.steps RENAME TO steps_unpartitioned;
    CREATE TABLE durable.steps (LIKE durable.steps_unpartitioned INCLUDING ALL)
        PARTITION BY RANGE (run_id);
    DROP TABLE durable.steps_unpartitioned;
    CREATE TABLE durable.steps_default PARTITION OF durable.steps DEFAULT;
    PERFORM durable.ensure_history_partitions(
        now() - make_interval(secs => period), now() + make_interval(secs => period * ahead));
    RETURN true;
END
$$;

-- Drop time partition `part` with its runs (signals and events go by ON DELETE CASCADE)
-- when its period ended before `cutoff` and every run in it finished before `cutoff`,
-- none has an unfinished parent or child. Returns the runs deleted, or NULL when the
-- partition is kept (a straggler, or a lock not granted within lock_timeout: try later).
-- Atomic: a run that appears or revives in the range while it works keeps everything.
CREATE FUNCTION durable.drop_history_partition(part text, cutoff timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    bounds record;
    deleted bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('durable.history_partitions'));
    SELECT p.lo, p.hi, p.ends_at INTO bounds FROM durable.history_partitions() AS p
    WHERE p.name = part;
    IF bounds.lo IS NULL OR bounds.ends_at > cutoff
        OR durable.history_stragglers(bounds.lo, bounds.hi, cutoff) THEN
        RETURN NULL;
    END IF;
    -- A busy table: give up after a moment rather than queue every step write behind us.
    PERFORM set_config('lock_timeout', '5s', true);
    BEGIN
        -- Steps writes of a run in the range wait here, and go to the default partition
        -- once it is gone.
        EXECUTE format('LOCK TABLE durable.%I IN ACCESS EXCLUSIVE MODE', part);
        DELETE FROM durable.runs
        WHERE id >= bounds.lo AND id < bounds.hi
          AND status IN ('completed', 'failed', 'cancelled') AND finished_at < cutoff;
        GET DIAGNOSTICS deleted = ROW_COUNT;
        IF EXISTS (SELECT 1 FROM durable.runs WHERE id >= bounds.lo AND id < bounds.hi)
            OR durable.history_stragglers(bounds.lo, bounds.hi, cutoff) THEN
            RAISE EXCEPTION 'kept' USING ERRCODE = 'DUR01';
        END IF;
        EXECUTE format('DROP TABLE durable.%I', part);
        RETURN deleted;
    EXCEPTION WHEN SQLSTATE 'DUR01' OR lock_not_available THEN
        RETURN NULL;  -- everything above is rolled back
    END;
END
$$;

-- A run in [lo, hi) that is unfinished or finished at or after `cutoff`, or whose parent
-- or a child is unfinished: the partition must stay.
CREATE FUNCTION durable.history_stragglers(lo uuid, hi uuid, cutoff timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM durable.runs
        WHERE id >= lo AND id < hi
          AND (status NOT IN ('completed', 'failed', 'cancelled') OR finished_at >= cutoff))
    OR EXISTS (
        SELECT 1 FROM durable.runs
        WHERE parent_run_id >= lo AND parent_run_id < hi
          AND status NOT IN ('completed', 'failed', 'cancelled'))
    OR EXISTS (
        SELECT 1 FROM durable.runs AS c JOIN durable.runs AS p ON p.id = c.parent_run_id
        WHERE c.id >= lo AND c.id < hi AND p.status NOT IN ('completed', 'failed', 'cancelled'))
$$;

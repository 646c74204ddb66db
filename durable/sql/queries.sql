-- Every statement durable runs at runtime, each named once.
-- Format: a "-- name: NAME" line, comment lines describing it, then the statement.
-- durable._store holds one typed function per name; nothing else sends SQL.
-- Channels: durable_wake (payload: queue) wakes workers; durable_run (payload: "<id> <status>")
-- wakes result waiters and tells workers a run changed under them.
-- Clock: durable.now() is a PL/pgSQL call with a query inside, and a call in a row's
-- expression runs once per row. Statements that write many rows read it once, in a
-- materialized "clock" CTE (inlined, the call would be back in every row): a claim of 16
-- runs took 0.99 ms under EXPLAIN ANALYZE, 0.71 ms so (median of 30).

-- name: migrations_bootstrap
-- The schema and the ledger of applied migrations, before the first migration runs.
CREATE SCHEMA IF NOT EXISTS durable;
CREATE TABLE IF NOT EXISTS durable.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: migrations_lock
-- Serialize migrating engines for the rest of the transaction.
SELECT pg_advisory_xact_lock($1);

-- name: migrations_table_exists
SELECT to_regclass('durable.schema_migrations') IS NOT NULL;

-- name: migrations_applied
SELECT version, checksum FROM durable.schema_migrations;

-- name: migrations_record
INSERT INTO durable.schema_migrations (version, name, checksum) VALUES ($1, $2, $3);

-- name: insert_run
-- Start a run: one statement inserts it and, when it is due now, wakes the workers.
-- Returns no row when the run id or (workflow, idempotency key) already exists.
WITH clock AS MATERIALIZED (SELECT durable.now() AS now), ins AS (
    INSERT INTO durable.runs (
        id, workflow_name, workflow_version, input, queue, priority, tags, idempotency_key,
        parent_run_id, parent_cursor, wake_at, deadline_at, traceparent, tracestate, depth,
        concurrency_key, resource_id, metadata, created_at, updated_at)
    SELECT
        $1, $2, $3, $4::json, $5, $6, $7::text[], $8, $9, $10,
        clock.now + make_interval(secs => coalesce($11::float8, 0)),
        clock.now + make_interval(secs => $12::float8), $13, $14, $15, $16, $17,
        $18::jsonb, clock.now, clock.now
    FROM clock
    ON CONFLICT DO NOTHING
    RETURNING id, queue, $11::float8 IS NULL OR $11::float8 <= 0 AS due
)
SELECT ins.id FROM ins
LEFT JOIN LATERAL (SELECT pg_notify('durable_wake', ins.queue) WHERE ins.due) AS n ON true;

-- name: insert_runs
-- insert_run for several starts in one statement and one commit: starts made while
-- another is on the wire leave together. One entry per run in each array; arrays of
-- arrays do not unnest, so the tags of all runs come flat in $7 and run i's are the slice
-- $8[i]..$9[i]. Wakes each queue that got a due run once. Returns the id of every run
-- inserted; a run whose id or (workflow, idempotency key) exists is left out.
WITH clock AS MATERIALIZED (SELECT durable.now() AS now), ins AS (
    INSERT INTO durable.runs (
        id, workflow_name, workflow_version, input, queue, priority, tags, idempotency_key,
        parent_run_id, parent_cursor, wake_at, deadline_at, traceparent, tracestate, depth,
        concurrency_key, resource_id, metadata, created_at, updated_at)
    SELECT i.id, i.workflow, i.version, i.input::json, i.queue, i.priority,
        ($7::text[])[i.tags_from:i.tags_to], i.idempotency_key, i.parent_run_id,
        i.parent_cursor, clock.now + make_interval(secs => coalesce(i.delay, 0)),
        clock.now + make_interval(secs => i.timeout), i.traceparent, i.tracestate,
        i.depth, i.concurrency_key, i.resource_id, i.metadata::jsonb, clock.now, clock.now
    FROM clock, unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[],
            $8::int[], $9::int[], $10::text[], $11::uuid[], $12::text[], $13::float8[],
            $14::float8[], $15::text[], $16::text[], $17::int[], $18::text[], $19::text[],
            $20::text[])
        AS i(id, workflow, version, input, queue, priority, tags_from, tags_to,
            idempotency_key, parent_run_id, parent_cursor, delay, timeout, traceparent,
            tracestate, depth, concurrency_key, resource_id, metadata)
    ON CONFLICT DO NOTHING
    RETURNING id, queue, wake_at <= created_at AS due  -- created_at: the clock above
), woken AS (
    SELECT count(pg_notify('durable_wake', q.queue)) AS queues
    FROM (SELECT DISTINCT queue FROM ins WHERE due) AS q
)
SELECT ins.id FROM ins, woken;

-- name: find_existing_run
-- The run an insert_run (or an insert_runs row) conflicted with: same id (first), or same
-- workflow and idempotency key; with its workflow (a run id of another workflow is
-- refused) and its resource (a run of another resource is never handed out).
SELECT id, workflow_name, resource_id FROM durable.runs
WHERE id = $1 OR (workflow_name = $2 AND idempotency_key = $3)
ORDER BY id = $1 DESC
LIMIT 1;

-- name: latest_workflow_version
-- The newest registered (version, queue, timeout) of a workflow name, for starts by name.
SELECT version, queue, timeout_seconds FROM durable.workflows WHERE name = $1
ORDER BY version DESC LIMIT 1;

-- name: register_workflows
-- A worker records the (name, version, queue, expected steps, timeout) of each workflow
-- it serves.
INSERT INTO durable.workflows (name, version, queue, expected_steps, timeout_seconds)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::float8[])
ON CONFLICT (name, version) DO UPDATE
    SET last_seen_at = durable.now(), queue = excluded.queue,
        expected_steps = excluded.expected_steps, timeout_seconds = excluded.timeout_seconds;

-- name: register_worker
-- $6: "name@version" of every workflow the worker serves (see run_version_available).
INSERT INTO durable.workers (id, hostname, pid, queues, concurrency, workflows)
VALUES ($1, $2, $3, $4::text[], $5, $6::text[])
ON CONFLICT (id) DO UPDATE SET heartbeat_at = durable.now();

-- name: unregister_worker
DELETE FROM durable.workers WHERE id = $1;

-- name: claim_runs
-- Claim up to $3 due runs of the unmanaged queues $4 and the (name, version) pairs $5/$6
-- for worker $1, leasing them for $2 seconds; higher priority first, then oldest due.
-- A run whose last $7 executions all lost their lease for nothing comes back exhausted.
-- Due: pending, sleeping or waiting with wake_at passed, or running with an expired lease
-- (a running run's wake_at is its lease expiry). Runs of managed queues (limits, keys)
-- go through claim_ids instead. Each row carries every record of the run, so a resume
-- costs this one query, and claimed_at, the database time of the claim: the worker's
-- estimate of durable.now() catches up to it before the run's timers are compared.
-- Each served (name, version) reads its first $3 due runs from runs_claim_workflow_idx in
-- claim order, so due runs of other workflows cost nothing; the best $3 of those are
-- claimed. Rows a name locked beyond them stay locked (skipped by other claims) only
-- until this statement commits.
WITH clock AS MATERIALIZED (SELECT durable.now() AS now), due AS (
    SELECT c.id FROM clock, unnest($5::text[], $6::int[]) AS w(name, version)
    CROSS JOIN LATERAL (
        SELECT id, priority, wake_at FROM durable.runs
        WHERE workflow_name = w.name AND workflow_version = w.version
          AND status IN ('pending', 'running', 'sleeping', 'waiting')
          AND concurrency_key IS NULL
          AND wake_at <= clock.now
          AND queue = ANY($4::text[])
        ORDER BY priority DESC, wake_at
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) AS c
    ORDER BY c.priority DESC, c.wake_at
    LIMIT $3
)
UPDATE durable.runs AS r SET
    status = 'running',
    lease_owner = $1,
    lease_expires_at = clock.now + make_interval(secs => $2),
    wake_at = clock.now + make_interval(secs => $2),
    attempt = r.attempt + 1,
    started_at = coalesce(r.started_at, clock.now),
    updated_at = clock.now,
    claimed_at = clock.now,
    -- Found running: the last execution's lease expired. It lost it for nothing when it
    -- recorded no step since its claim (a park or a finish leaves the run not running).
    lost_executions = CASE
        WHEN r.status = 'running' AND NOT EXISTS (
            SELECT 1 FROM durable.steps AS s
            WHERE s.run_id = r.id AND s.finished_at >= r.claimed_at)
        THEN r.lost_executions + 1 ELSE 0 END
FROM due, clock
WHERE r.id = due.id
RETURNING r.id, r.workflow_name, r.workflow_version, r.input, r.attempt, r.queue,
    r.deadline_at, r.parent_run_id, r.traceparent, r.tracestate, r.depth, r.started_at,
    r.claimed_at, r.lost_executions, r.lost_executions >= $7 AS exhausted,
    -- An exhausted run is failed by the worker without running it: no records to load.
    (SELECT json_agg(json_build_object(
            'key', s.cursor_key, 'seq', s.seq, 'kind', s.kind, 'name', s.name,
            'status', s.status, 'output', s.output, 'error', s.error,
            'attempt', s.attempt, 'retry_at', s.retry_at))
        FROM durable.steps AS s WHERE s.run_id = r.id AND r.lost_executions < $7) AS records;

-- name: managed_queues
-- Queues with a row in durable.queues: their runs are claimed under the queue's lock.
SELECT name FROM durable.queues;

-- name: lock_queue
-- Serialize claims of one managed queue across workers for the rest of the transaction;
-- the counts that follow (queue_load) then see every earlier claim.
SELECT concurrency, rate_limit, rate_period_seconds, key_concurrency
FROM durable.queues WHERE name = $1 FOR UPDATE;

-- name: queue_load
-- Runs of queue $1 running under a live lease, and first claims within the last $2 s.
-- First claims older than that are forgotten: their window ended, and next_wake, which
-- wakes workers for an ended window, must see it only until a claim has looked at it.
WITH expired AS (
    DELETE FROM durable.queue_starts
    WHERE queue = $1 AND started_at <= durable.now() - make_interval(secs => $2::float8)
)
SELECT
    (SELECT count(*) FROM durable.runs
        WHERE status = 'running' AND queue = $1 AND lease_expires_at > durable.now())
        AS running,
    (SELECT count(*) FROM durable.queue_starts
        WHERE queue = $1 AND started_at > durable.now() - make_interval(secs => $2::float8))
        AS recent;

-- name: queue_candidates
-- Up to $2 due runs of managed queue $1 for the (name, version) pairs $3/$4, locked for
-- the claim; the worker picks among them within the queue's limits.
SELECT id, concurrency_key, started_at IS NULL AS first_claim FROM durable.runs
WHERE status IN ('pending', 'running', 'sleeping', 'waiting')
  AND wake_at <= durable.now()
  AND queue = $1
  AND (workflow_name, workflow_version) IN (SELECT * FROM unnest($3::text[], $4::int[]))
ORDER BY priority DESC, wake_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: running_keys
-- How many runs of queue $1 run under a live lease per concurrency key in $2.
SELECT concurrency_key, count(*) AS running FROM durable.runs
WHERE status = 'running' AND queue = $1 AND lease_expires_at > durable.now()
  AND concurrency_key = ANY($2::text[])
GROUP BY concurrency_key;

-- name: claim_ids
-- Claim the runs $3 (already locked by queue_candidates) for worker $1 with a lease of $2
-- seconds; returns the same columns as claim_runs ($4: max_run_attempts).
WITH clock AS MATERIALIZED (SELECT durable.now() AS now)
UPDATE durable.runs AS r SET
    status = 'running',
    lease_owner = $1,
    lease_expires_at = clock.now + make_interval(secs => $2),
    wake_at = clock.now + make_interval(secs => $2),
    attempt = r.attempt + 1,
    started_at = coalesce(r.started_at, clock.now),
    updated_at = clock.now,
    claimed_at = clock.now,
    -- Found running: the last execution's lease expired. It lost it for nothing when it
    -- recorded no step since its claim (a park or a finish leaves the run not running).
    lost_executions = CASE
        WHEN r.status = 'running' AND NOT EXISTS (
            SELECT 1 FROM durable.steps AS s
            WHERE s.run_id = r.id AND s.finished_at >= r.claimed_at)
        THEN r.lost_executions + 1 ELSE 0 END
FROM clock
WHERE r.id = ANY($3::uuid[])
RETURNING r.id, r.workflow_name, r.workflow_version, r.input, r.attempt, r.queue,
    r.deadline_at, r.parent_run_id, r.traceparent, r.tracestate, r.depth, r.started_at,
    r.claimed_at, r.lost_executions, r.lost_executions >= $4 AS exhausted,
    -- An exhausted run is failed by the worker without running it: no records to load.
    (SELECT json_agg(json_build_object(
            'key', s.cursor_key, 'seq', s.seq, 'kind', s.kind, 'name', s.name,
            'status', s.status, 'output', s.output, 'error', s.error,
            'attempt', s.attempt, 'retry_at', s.retry_at))
        FROM durable.steps AS s WHERE s.run_id = r.id AND r.lost_executions < $4) AS records;

-- name: record_queue_starts
-- Note first claims $3 of rate-limited queue $1 and forget those older than $2 seconds.
WITH expired AS (
    DELETE FROM durable.queue_starts
    WHERE queue = $1 AND started_at <= durable.now() - make_interval(secs => $2::float8)
)
INSERT INTO durable.queue_starts (queue, run_id) SELECT $1, unnest($3::uuid[]);

-- name: configure_queue
-- Create or change a managed queue's limits and tell the workers.
WITH upserted AS (
    INSERT INTO durable.queues AS q
        (name, concurrency, rate_limit, rate_period_seconds, key_concurrency)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (name) DO UPDATE SET
        concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,
        rate_period_seconds = excluded.rate_period_seconds,
        key_concurrency = excluded.key_concurrency, updated_at = durable.now()
    RETURNING q.name
)
SELECT name, pg_notify('durable_wake', '*queues') FROM upserted;

-- name: ensure_queue
-- A run with a concurrency key makes its queue managed (default limits), once.
WITH ins AS (
    INSERT INTO durable.queues (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING name
)
SELECT pg_notify('durable_wake', '*queues') FROM ins;

-- name: get_queues
SELECT name, concurrency, rate_limit, rate_period_seconds, key_concurrency, updated_at
FROM durable.queues ORDER BY name;

-- name: next_wake
-- Seconds until the earliest future wake of any unfinished run, or until a rate window of
-- a queue in $1 makes room (NULL: none), so an idle worker sleeps exactly until the next
-- timer, lease expiry, delayed start or rate window. A window that already ended (the
-- claim before took longer than the rest of it) while runs of the served (name, version)
-- pairs $2/$3 wait in its queue for their first claim means now (0). That claim forgets
-- the ended window (queue_load), so a worker that still cannot take them (a full
-- concurrency or key limit) sleeps until the next wake instead of asking again. A period
-- no interval can hold (a row written by hand: infinity, NaN, centuries) is skipped; the
-- claim reports that queue.
SELECT extract(epoch FROM least(
    (SELECT min(wake_at) FROM durable.runs
        WHERE status IN ('pending', 'running', 'sleeping', 'waiting')
          AND wake_at > durable.now()),
    (SELECT min(s.started_at + make_interval(secs => q.rate_period_seconds))
        FROM durable.queue_starts AS s JOIN durable.queues AS q ON q.name = s.queue
        WHERE q.name = ANY($1::text[])
          AND CASE WHEN q.rate_period_seconds <= 3153600000  -- _validate.MAX_SECONDS
            THEN s.started_at + make_interval(secs => q.rate_period_seconds) > durable.now()
          END),
    (SELECT durable.now() FROM durable.queues AS q
        WHERE q.name = ANY($1::text[])
          AND CASE WHEN q.rate_period_seconds <= 3153600000 THEN EXISTS (
                SELECT 1 FROM durable.queue_starts AS s
                WHERE s.queue = q.name AND s.started_at
                    <= durable.now() - make_interval(secs => q.rate_period_seconds))
          END
          AND EXISTS (
                SELECT 1 FROM durable.runs AS r
                WHERE r.status IN ('pending', 'running', 'sleeping', 'waiting')
                  AND r.wake_at <= durable.now() AND r.queue = q.name
                  AND r.started_at IS NULL
                  AND (r.workflow_name, r.workflow_version)
                      IN (SELECT * FROM unnest($2::text[], $3::int[])))
        LIMIT 1)
) - durable.now())::float8;

-- name: heartbeat_runs
-- Extend the leases of a worker's runs in one statement; returns the runs it still holds.
WITH clock AS MATERIALIZED (SELECT durable.now() AS now)
UPDATE durable.runs SET
    lease_expires_at = clock.now + make_interval(secs => $2),
    wake_at = clock.now + make_interval(secs => $2)
FROM clock
WHERE id = ANY($3::uuid[]) AND lease_owner = $1 AND status = 'running'
RETURNING id;

-- name: heartbeat_worker
-- Worker $1 is alive; the rows of workers silent for $2 seconds (dead: killed, or gone
-- without unregistering) are removed. No row: this worker's own row was removed (it was
-- silent that long itself) and must register again.
WITH stale AS (
    DELETE FROM durable.workers
    WHERE heartbeat_at < durable.now() - make_interval(secs => $2::float8) AND id <> $1
)
UPDATE durable.workers SET heartbeat_at = durable.now() WHERE id = $1 RETURNING id;

-- name: release_runs
-- Hand a stopping worker's runs back, due at once, and wake the other workers.
WITH released AS (
    UPDATE durable.runs SET
        status = 'pending', lease_owner = NULL, lease_expires_at = NULL,
        wake_at = durable.now(), updated_at = durable.now()
    WHERE id = ANY($2::uuid[]) AND lease_owner = $1 AND status = 'running'
    RETURNING queue
)
SELECT pg_notify('durable_wake', queue) FROM (SELECT DISTINCT queue FROM released) AS q;

-- name: record_step
-- Record one durable call's outcome, fenced by the lease: the run must still be running
-- under this claim ($2 = the attempt that claimed it), and its row stays key-share locked
-- until commit, so a concurrent reclaim waits for (or skips) this write. A completed or
-- failed record is final; only a 'retrying' record (a failed attempt that will run again)
-- or a 'waiting' one (an armed signal wait) is replaced. Returns no row when the lease was
-- lost or the key was already recorded. A replaced 'retrying' record moves into
-- earlier_attempts (durable.keep_attempt), so every attempt of a step stays. Notifies
-- only while a handle waits on progress (watch_until ahead of the clock; see
-- watch_progress).
WITH fence AS (
    SELECT id,
        CASE WHEN watch_until IS NULL THEN NULL WHEN watch_until > durable.now()
            THEN pg_notify('durable_run', id::text || ' step')::text END AS notified
    FROM durable.runs
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    FOR KEY SHARE
)
INSERT INTO durable.steps AS s (
    run_id, cursor_key, seq, kind, name, status, output, error, attempt, retry_at,
    started_at, finished_at)
SELECT id, $3, $4, $5, $6, $7, $8::json, $9::json, $10,
    durable.now() + make_interval(secs => $11::float8), $12, durable.now()
FROM fence
ON CONFLICT (run_id, cursor_key) DO UPDATE SET
    status = excluded.status, output = excluded.output, error = excluded.error,
    attempt = excluded.attempt, retry_at = excluded.retry_at,
    started_at = CASE s.status WHEN 'retrying' THEN excluded.started_at ELSE s.started_at END,
    finished_at = excluded.finished_at,
    earlier_attempts = durable.keep_attempt(s.earlier_attempts, s.status, s.attempt,
        excluded.attempt, s.error, s.started_at, s.finished_at)
WHERE s.status IN ('retrying', 'waiting')
RETURNING 1;

-- name: record_steps
-- record_step for several runs in one statement and one commit (the worker combines the
-- writes of executions that finish a step at the same moment). Each run is fenced like
-- record_step: $1..$2 list each run once with the attempt that claimed it; the rest are
-- one entry per record. Returns the (run, key) of every record written.
WITH clock AS MATERIALIZED (SELECT durable.now() AS now), fence AS (
    SELECT r.id,
        CASE WHEN r.watch_until IS NULL THEN NULL WHEN r.watch_until > clock.now
            THEN pg_notify('durable_run', r.id::text || ' step')::text END AS notified
    FROM clock, durable.runs AS r
    JOIN unnest($1::uuid[], $2::int[]) AS c(run_id, attempt)
        ON r.id = c.run_id AND r.attempt = c.attempt
    WHERE r.status = 'running'
    FOR KEY SHARE OF r
)
INSERT INTO durable.steps AS s (
    run_id, cursor_key, seq, kind, name, status, output, error, attempt, retry_at,
    started_at, finished_at)
SELECT i.run_id, i.key, i.seq, i.kind, i.name, i.status, i.output::json, i.error::json,
    i.attempt, clock.now + make_interval(secs => i.retry_in), i.started_at, clock.now
FROM clock, unnest($3::uuid[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[],
        $9::text[], $10::text[], $11::int[], $12::float8[], $13::timestamptz[])
    AS i(run_id, key, seq, kind, name, status, output, error, attempt, retry_in, started_at)
JOIN fence ON fence.id = i.run_id
ON CONFLICT (run_id, cursor_key) DO UPDATE SET
    status = excluded.status, output = excluded.output, error = excluded.error,
    attempt = excluded.attempt, retry_at = excluded.retry_at,
    started_at = CASE s.status WHEN 'retrying' THEN excluded.started_at ELSE s.started_at END,
    finished_at = excluded.finished_at,
    earlier_attempts = durable.keep_attempt(s.earlier_attempts, s.status, s.attempt,
        excluded.attempt, s.error, s.started_at, s.finished_at)
WHERE s.status IN ('retrying', 'waiting')
RETURNING s.run_id, s.cursor_key;

-- name: record_values
-- Write the values of synchronous recorded calls (now, uuid4, random, patched) in one
-- statement, fenced like record_step. Returns the number of rows fenced in (0: lease lost).
WITH fence AS (
    SELECT id FROM durable.runs
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    FOR KEY SHARE
), ins AS (
    INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status, output)
    SELECT fence.id, v.key, v.seq, v.kind, v.name, 'completed', v.output::json
    FROM fence, unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[])
        AS v(key, seq, kind, name, output)
    ON CONFLICT (run_id, cursor_key) DO NOTHING
)
SELECT count(*) FROM fence;

-- name: lock_run
-- Take the run's row lock for the rest of the transaction, fenced by the claim. Parking,
-- signal delivery and child completion all lock the run first, so none can slip between
-- another's check and its write.
SELECT id FROM durable.runs WHERE id = $1 AND attempt = $2 AND status = 'running' FOR UPDATE;

-- name: park_run
-- Suspend a running run (sleeping or waiting) until wake_at ($4; NULL: until woken) or one
-- of $5 ("signal:<name>", "child:<id>") happens, freeing its slot. When one already has
-- (a buffered signal, a finished child) the run is due at once. Run after lock_run.
WITH parked AS (
    UPDATE durable.runs AS r SET
        status = $3, waiting_for = $5::text[], lease_owner = NULL, lease_expires_at = NULL,
        updated_at = durable.now(),
        wake_at = CASE
            WHEN EXISTS (
                SELECT 1 FROM durable.signals AS s
                WHERE s.run_id = r.id AND s.consumed_by IS NULL AND s.rejected IS NULL
                  AND 'signal:' || s.name = ANY($5::text[]))
              OR EXISTS (
                SELECT 1 FROM durable.runs AS c
                WHERE c.parent_run_id = r.id AND 'child:' || c.id::text = ANY($5::text[])
                  AND c.status IN ('completed', 'failed', 'cancelled'))
            THEN durable.now()
            ELSE least($4::timestamptz, r.deadline_at)
        END
    WHERE r.id = $1 AND r.attempt = $2 AND r.status = 'running'
    RETURNING r.queue, r.wake_at <= durable.now() AS due
)
SELECT due FROM parked
LEFT JOIN LATERAL (SELECT pg_notify('durable_wake', parked.queue) WHERE parked.due) AS n ON true;

-- name: pause_self
-- durable.pause(): park running run $1 (claim $2) as paused, after lock_run, until
-- engine.resume makes it pending and due at once. Its pause record is written in the same
-- transaction, so the resumed run replays past the pause.
UPDATE durable.runs SET
    status = 'paused', paused_from = 'pending', wake_at = NULL, waiting_for = NULL,
    lease_owner = NULL, lease_expires_at = NULL, updated_at = durable.now()
WHERE id = $1 AND attempt = $2 AND status = 'running'
RETURNING id;

-- name: finish_runs
-- Store the final status, output or error of one or more runs (the worker combines runs
-- that end at the same moment) in one statement, each fenced by its claim like
-- record_step. Wakes a parent waiting for one of them, tells result waiters (a hint:
-- they read the row) and the workers of a managed queue whose slot freed. A parent's row
-- is always updated (so locked): a parent parking at the same moment sees its child
-- finished. A run finished with $6 (a workflow timeout) cancels its unfinished
-- descendants in the same statement, as cancel_run does. Returns the ids finished.
WITH RECURSIVE clock AS MATERIALIZED (SELECT durable.now() AS now), done AS (
    UPDATE durable.runs AS r SET
        status = i.status, output = i.output::json, error = i.error::json,
        finished_at = clock.now, updated_at = clock.now,
        lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, waiting_for = NULL
    FROM clock, unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bool[])
        AS i(id, attempt, status, output, error, cascade)
    WHERE r.id = i.id AND r.attempt = i.attempt AND r.status = 'running'
    RETURNING r.id, r.parent_run_id, r.queue, i.status AS final, i.cascade
), tree AS (
    SELECT c.id FROM durable.runs AS c JOIN done ON c.parent_run_id = done.id AND done.cascade
    UNION ALL
    SELECT c.id FROM durable.runs AS c JOIN tree ON c.parent_run_id = tree.id
), orphaned AS (
    UPDATE durable.runs AS r SET
        status = 'cancelled', finished_at = clock.now, updated_at = clock.now,
        wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL, waiting_for = NULL,
        error = json_build_object('type', 'durable.errors.RunCancelled',
            'message', 'the run was cancelled: its parent timed out', 'code', 'run_cancelled')
    FROM tree, clock
    WHERE r.id = tree.id AND r.status NOT IN ('completed', 'failed', 'cancelled')
    RETURNING pg_notify('durable_run', r.id::text || ' cancelled')::text AS notified,
        pg_notify('durable_control', r.id::text || ' cancelled')::text AS stopped
), parent AS (
    UPDATE durable.runs AS p SET wake_at = CASE
        WHEN p.status = 'waiting' AND EXISTS (
            SELECT 1 FROM done
            WHERE done.parent_run_id = p.id AND 'child:' || done.id::text = ANY(p.waiting_for))
        THEN clock.now ELSE p.wake_at END
    FROM clock
    WHERE p.id IN (SELECT parent_run_id FROM done)
    RETURNING p.queue, p.status = 'waiting' AND p.wake_at <= clock.now AS woken
), told AS (
    -- Only a hint (anyone can NOTIFY): waiters read the outcome from the row.
    SELECT id, pg_notify('durable_run', id::text || ' ' || final)::text AS notified
    FROM done
)
-- Identical notifications in one transaction are delivered once.
SELECT told.id,
    (SELECT count(pg_notify('durable_wake', queue)) FROM parent WHERE woken) AS parents,
    (SELECT count(pg_notify('durable_wake', q.name)) FROM durable.queues AS q
        WHERE q.name IN (SELECT queue FROM done)) AS freed,
    (SELECT count(*) FROM orphaned) AS orphaned
FROM told;

-- name: run_outcome
-- The status, output and error of one run: handle.status(), a child's outcome, a
-- handle read inside a workflow (result() waiters read through run_outcomes).
SELECT status, output, error FROM durable.runs WHERE id = $1;

-- name: run_outcomes
-- The status, output and error of the runs $1: the outcome reads of many result()
-- waiters of one client, combined into one primary-key read (a missing id: no row).
SELECT id, status, output, error FROM durable.runs WHERE id = ANY($1::uuid[]);

-- name: get_run
-- version_available: some live worker (heartbeat within a minute) serves the run's
-- (name, version), so a run pinned to a retired version is reported, never stranded quietly.
-- The live set is read once (heartbeats keep durable.workers down to live workers).
WITH live AS (
    SELECT DISTINCT unnest(workflows) AS served FROM durable.workers
    WHERE heartbeat_at > durable.now() - interval '60 seconds'
)
SELECT id, workflow_name, workflow_version, status, input, output, error, queue, priority,
    tags, attempt, created_at, started_at, finished_at, parent_run_id, parent_cursor,
    wake_at, lease_owner, idempotency_key, waiting_for, forked_from, previous_errors,
    progress_fraction, progress_message, resource_id, metadata,
    (SELECT w.expected_steps FROM durable.workflows AS w
        WHERE w.name = r.workflow_name AND w.version = r.workflow_version) AS expected_steps,
    r.workflow_name || '@' || r.workflow_version IN (SELECT served FROM live)
        AS version_available
FROM durable.runs AS r WHERE id = $1;

-- name: run_steps
-- The steps timeline of one run, in call order, with each step's earlier attempts.
SELECT cursor_key, seq, kind, name, status, output, error, attempt, started_at, finished_at,
    retry_at, earlier_attempts
FROM durable.steps WHERE run_id = $1 ORDER BY seq, cursor_key;

-- name: run_events
SELECT key, value FROM durable.events WHERE run_id = $1 ORDER BY key;

-- name: run_children
SELECT id FROM durable.runs WHERE parent_run_id = $1 ORDER BY created_at, id;

-- name: run_signals
-- Every signal sent to run $1, consumed or not, in the order sent (a run's history), with
-- why a wait rejected it (rejected: NULL when none did).
SELECT name, seq, payload, consumed_by, created_at, rejected
FROM durable.signals WHERE run_id = $1 ORDER BY seq;

-- name: list_runs
-- One keyset page of runs, newest first. Every filter is optional (NULL: any); a
-- resource filter ($11) reads runs_resource_idx.
-- ($8, $9) is the (created_at, id) of the last row of the previous page.
-- version_available as in get_run; the live set is read once for the page.
WITH live AS (
    SELECT DISTINCT unnest(workflows) AS served FROM durable.workers
    WHERE heartbeat_at > durable.now() - interval '60 seconds'
)
SELECT id, workflow_name, workflow_version, status, error, queue, priority, tags, attempt,
    created_at, started_at, finished_at, parent_run_id, resource_id, metadata,
    r.workflow_name || '@' || r.workflow_version IN (SELECT served FROM live)
        AS version_available
FROM durable.runs AS r
WHERE ($1::text IS NULL OR workflow_name = $1)
  AND ($11::text IS NULL OR resource_id = $11)
  AND ($2::text[] IS NULL OR status = ANY($2::text[]))
  AND ($3::text IS NULL OR tags @> ARRAY[$3::text])
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::uuid IS NULL OR parent_run_id = $6)
  AND ($7::text IS NULL OR queue = $7)
  AND ($8::timestamptz IS NULL OR (created_at, id) < ($8, $9::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $10;

-- name: list_runs_asc
-- list_runs oldest first (order="asc"): the same parameters and filters; ($8, $9) is the
-- (created_at, id) of the last row of the previous page, and the next page lies after it.
SELECT id, workflow_name, workflow_version, status, error, queue, priority, tags, attempt,
    created_at, started_at, finished_at, parent_run_id, resource_id, metadata,
    EXISTS (SELECT 1 FROM durable.workers AS w
        WHERE w.heartbeat_at > durable.now() - interval '60 seconds'
          AND r.workflow_name || '@' || r.workflow_version = ANY(w.workflows))
        AS version_available
FROM durable.runs AS r
WHERE ($1::text IS NULL OR workflow_name = $1)
  AND ($11::text IS NULL OR resource_id = $11)
  AND ($2::text[] IS NULL OR status = ANY($2::text[]))
  AND ($3::text IS NULL OR tags @> ARRAY[$3::text])
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::uuid IS NULL OR parent_run_id = $6)
  AND ($7::text IS NULL OR queue = $7)
  AND ($8::timestamptz IS NULL OR (created_at, id) > ($8, $9::uuid))
ORDER BY created_at, id
LIMIT $10;

-- name: count_runs
-- How many runs match list_runs' filters ($1..$7 as there, $8 the resource).
SELECT count(*) FROM durable.runs
WHERE ($1::text IS NULL OR workflow_name = $1)
  AND ($8::text IS NULL OR resource_id = $8)
  AND ($2::text[] IS NULL OR status = ANY($2::text[]))
  AND ($3::text IS NULL OR tags @> ARRAY[$3::text])
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::uuid IS NULL OR parent_run_id = $6)
  AND ($7::text IS NULL OR queue = $7);

-- name: custom_plans
-- For the rest of the transaction, plan every statement for its own parameters. list_runs
-- needs it: its optional filters ("$8 IS NULL OR ...") make the cached generic plan scan
-- the newest runs and filter them, so page 400 walked 20,000 rows once that plan won.
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: db_now
SELECT durable.now();

-- name: shift_clock
-- Move durable.now() forward by $1 seconds for every connection (tests only).
UPDATE durable.clock SET offset_seconds = offset_seconds + $1 RETURNING offset_seconds;

-- name: next_timer
-- Seconds until the earliest timer (a sleeping run or a delayed start); NULL when none.
-- The test harness skips the clock to it; waits' timeouts are not timers here.
SELECT extract(epoch FROM min(wake_at) - durable.now())::float8 FROM durable.runs
WHERE (status = 'sleeping' OR status = 'pending') AND wake_at > durable.now();

-- name: count_due_runs
-- Runs due now (ready but not yet claimed, or with an expired lease), via the claim index.
SELECT count(*) FROM durable.runs
WHERE status IN ('pending', 'running', 'sleeping', 'waiting') AND wake_at <= durable.now();

-- name: count_ready_runs
-- Runs due but not yet claimed, per queue of $1, with the seconds the oldest has waited:
-- the queue-depth gauges. Reads only the due part of the claim index (runs_claim_idx).
SELECT queue, count(*) AS ready, extract(epoch FROM durable.now() - min(wake_at))::float8 AS lag
FROM durable.runs
WHERE status IN ('pending', 'running', 'sleeping', 'waiting') AND wake_at <= durable.now()
  AND queue = ANY($1::text[])
GROUP BY queue;

-- name: signal_wait_type
-- The payload type an armed wait of run $1 for signal $2 declared, if any.
SELECT output ->> 'type' FROM durable.steps
WHERE run_id = $1 AND kind = 'signal' AND name = $2 AND status = 'waiting'
LIMIT 1;

-- name: send_signal
-- Deliver signal $2 to run $1: store it (deduplicated by idempotency key $4) and, when the
-- run is parked waiting for it, make it due and wake the workers. The run's row is always
-- locked first, like finish_runs. Returns the run's status, whether it was waiting for
-- this signal, whether it is late (no wait of that name is armed and the latest one timed
-- out or is past its deadline), and the new signal's seq (NULL: a duplicate). No row: no
-- such run. $5/$6: the sender's trace context, stored with the signal.
WITH target AS (
    SELECT id, status, queue, wake_at, workflow_name,
        status = 'waiting' AND 'signal:' || $2 = ANY(waiting_for) AS awaited
    FROM durable.runs WHERE id = $1
    FOR UPDATE
), woken AS (
    UPDATE durable.runs AS r SET wake_at = durable.now()
    FROM target
    WHERE r.id = target.id AND target.awaited
      AND (target.wake_at IS NULL OR target.wake_at > durable.now())
    RETURNING r.queue
), ins AS (
    INSERT INTO durable.signals (run_id, name, payload, idempotency_key, traceparent, tracestate)
    SELECT id, $2, $3::json, $4, $5, $6 FROM target
    WHERE target.status NOT IN ('completed', 'failed', 'cancelled')
    ON CONFLICT DO NOTHING
    RETURNING seq
)
SELECT target.status, target.awaited, target.workflow_name,
    coalesce((
        SELECT w.status = 'failed' OR (w.status = 'waiting' AND w.retry_at <= durable.now())
        FROM durable.steps AS w
        WHERE w.run_id = $1 AND w.kind = 'signal' AND w.name = $2
        ORDER BY w.seq DESC LIMIT 1), false)
    AND NOT EXISTS (
        SELECT 1 FROM durable.steps AS w
        WHERE w.run_id = $1 AND w.kind = 'signal' AND w.name = $2 AND w.status = 'waiting'
          AND (w.retry_at IS NULL OR w.retry_at > durable.now())) AS expired,
    (SELECT seq FROM ins) AS seq,
    (SELECT pg_notify('durable_wake', queue) FROM woken) AS notified
FROM target;

-- name: consume_signal
-- Take the oldest unconsumed, unrejected signal $3 of run $1 sent before the wait's
-- deadline ($6) (with $7: exactly that seq), and record it as the outcome of the wait at
-- cursor key $4 (position $5) in one statement, fenced like record_step. Returns its
-- payload and the sender's trace context; no row when none is there.
WITH fence AS (
    SELECT id, watch_until > durable.now() AS watched FROM durable.runs
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    FOR KEY SHARE
), sig AS (
    SELECT s.run_id, s.name, s.seq, s.payload, s.traceparent, s.tracestate
    FROM durable.signals AS s, fence
    WHERE s.run_id = $1 AND s.name = $3 AND s.consumed_by IS NULL AND s.rejected IS NULL
      AND s.created_at <= coalesce($6::timestamptz, 'infinity')
      AND ($7::bigint IS NULL OR s.seq = $7)
    ORDER BY s.seq
    LIMIT 1
    FOR UPDATE OF s SKIP LOCKED
), used AS (
    UPDATE durable.signals AS s SET consumed_by = $4
    FROM sig WHERE s.run_id = sig.run_id AND s.name = sig.name AND s.seq = sig.seq
    RETURNING sig.payload, sig.traceparent, sig.tracestate
), rec AS (
    INSERT INTO durable.steps AS st (run_id, cursor_key, seq, kind, name, status, output)
    SELECT $1, $4, $5, 'signal', $3, 'completed', payload FROM used
    ON CONFLICT (run_id, cursor_key) DO UPDATE SET
        status = 'completed', output = excluded.output, retry_at = NULL,
        finished_at = durable.now()
    WHERE st.status = 'waiting'
    RETURNING st.output
)
SELECT rec.output, used.traceparent, used.tracestate FROM rec CROSS JOIN used CROSS JOIN fence
LEFT JOIN LATERAL (
    SELECT pg_notify('durable_run', $1::text || ' step') WHERE fence.watched) AS n ON true;

-- name: pending_signals
-- Up to $4 of the oldest unconsumed, unrejected signals $2 of run $1 sent before the
-- wait's deadline ($3): a typed wait checks their payloads before it consumes one.
SELECT seq, payload FROM durable.signals
WHERE run_id = $1 AND name = $2 AND consumed_by IS NULL AND rejected IS NULL
  AND created_at <= coalesce($3::timestamptz, 'infinity')
ORDER BY seq
LIMIT $4;

-- name: reject_signals
-- Mark signals $4 (seqs) of run $1 named $3 rejected, with reasons $5, fenced like
-- record_step. They stay unconsumed: no wait takes them, get_run shows them.
WITH fence AS (
    SELECT id FROM durable.runs
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    FOR KEY SHARE
)
UPDATE durable.signals AS s SET rejected = v.reason
FROM fence, unnest($4::bigint[], $5::text[]) AS v(seq, reason)
WHERE s.run_id = fence.id AND s.name = $3 AND s.seq = v.seq AND s.consumed_by IS NULL;

-- name: cancel_run
-- Cancel run $1 and every unfinished descendant; wake the waiting parent of a cancelled
-- run and tell executing workers (durable_control) and result waiters (durable_run).
-- Returns one row per cancelled run.
WITH RECURSIVE tree AS (
    SELECT id FROM durable.runs WHERE id = $1
    UNION ALL
    SELECT c.id FROM durable.runs AS c JOIN tree ON c.parent_run_id = tree.id
), done AS (
    UPDATE durable.runs AS r SET
        status = 'cancelled', finished_at = durable.now(), updated_at = durable.now(),
        wake_at = NULL, lease_owner = NULL, lease_expires_at = NULL, waiting_for = NULL,
        error = json_build_object('type', 'durable.errors.RunCancelled',
            'message', 'the run was cancelled', 'code', 'run_cancelled')
    FROM tree
    WHERE r.id = tree.id AND r.status NOT IN ('completed', 'failed', 'cancelled')
    RETURNING r.id, r.parent_run_id, r.workflow_name, r.workflow_version, r.attempt
), parents AS (
    UPDATE durable.runs AS p SET wake_at = durable.now()
    FROM done
    WHERE p.id = done.parent_run_id AND p.status = 'waiting'
      AND 'child:' || done.id::text = ANY(p.waiting_for)
    RETURNING p.queue
)
SELECT done.id, done.workflow_name, done.workflow_version, done.attempt,
    pg_notify('durable_run', done.id::text || ' cancelled'),
    pg_notify('durable_control', done.id::text || ' cancelled'),
    (SELECT count(pg_notify('durable_wake', queue)) FROM parents) AS woken
FROM done;

-- name: delete_run
-- Delete run $1 with its child runs (recursively) and their steps; signals and events go by
-- ON DELETE CASCADE. Only a tree whose every run is finished is deleted: otherwise nothing.
-- Returns the tree's size, how many of its runs are unfinished, and how many were deleted.
WITH RECURSIVE tree AS (
    SELECT id, status FROM durable.runs WHERE id = $1
    UNION ALL
    SELECT c.id, c.status FROM durable.runs AS c JOIN tree ON c.parent_run_id = tree.id
), unfinished AS (
    SELECT count(*) AS n FROM tree WHERE status NOT IN ('completed', 'failed', 'cancelled')
), gone_steps AS (
    DELETE FROM durable.steps
    WHERE run_id IN (SELECT id FROM tree) AND (SELECT n FROM unfinished) = 0
), gone AS (
    DELETE FROM durable.runs
    WHERE id IN (SELECT id FROM tree) AND (SELECT n FROM unfinished) = 0
      AND status IN ('completed', 'failed', 'cancelled')
    RETURNING id
)
SELECT (SELECT count(*) FROM tree) AS found, (SELECT n FROM unfinished) AS unfinished,
    (SELECT count(*) FROM gone) AS deleted;

-- name: list_workflows
-- Every (name, version) a worker registered, with the live workers (heartbeat within a
-- minute) that serve it now.
SELECT w.name, w.version, w.queue, w.expected_steps, w.registered_at, w.last_seen_at,
    array(SELECT k.id FROM durable.workers AS k
        WHERE k.heartbeat_at > durable.now() - interval '60 seconds'
          AND w.name || '@' || w.version = ANY(k.workflows)
        ORDER BY k.id) AS workers
FROM durable.workflows AS w
ORDER BY w.name, w.version;

-- name: run_by_key
-- The run of workflow $1 started with idempotency key $2 (runs_idempotency_idx).
SELECT id FROM durable.runs WHERE workflow_name = $1 AND idempotency_key = $2;

-- name: run_resource
-- Whether run $1 exists and the resource it belongs to (fixed at start), for scoped calls.
SELECT resource_id FROM durable.runs WHERE id = $1;

-- name: run_exists
SELECT status FROM durable.runs WHERE id = $1;

-- name: set_event
-- Publish value $4 under key $3 of run $1 and record the call ($5 key, $6 position, with
-- the value, which a fork copies), fenced like record_step; tells handles waiting on the
-- run's events.
WITH fence AS (
    SELECT id FROM durable.runs
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    FOR KEY SHARE
), ev AS (
    INSERT INTO durable.events AS e (run_id, key, value)
    SELECT id, $3, $4::json FROM fence
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, updated_at = durable.now()
    RETURNING e.run_id, e.value
), rec AS (
    INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status, output)
    SELECT run_id, $5, $6, 'event', $3, 'completed', value FROM ev
    ON CONFLICT (run_id, cursor_key) DO NOTHING
)
SELECT pg_notify('durable_run', $1::text || ' event') FROM ev;

-- name: set_progress
-- Store the fraction $3 and message $4 of run $1's durable.set_progress and record the
-- call ($5 key, $6 position, $7 the value for the timeline), fenced like record_step.
-- Returns no row when the claim was lost.
WITH upd AS (
    UPDATE durable.runs SET progress_fraction = $3, progress_message = $4
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    RETURNING id
), rec AS (
    INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status, output)
    SELECT id, $5, $6, 'progress', '', 'completed', $7::json FROM upd
    ON CONFLICT (run_id, cursor_key) DO NOTHING
)
SELECT id FROM upd;

-- name: progress_of_run
-- handle.progress(): run $1's status, declared progress, the expected step count its
-- workflow version registered, and how many of its steps completed.
SELECT r.status, r.progress_fraction, r.progress_message,
    (SELECT w.expected_steps FROM durable.workflows AS w
        WHERE w.name = r.workflow_name AND w.version = r.workflow_version) AS expected_steps,
    (SELECT count(*) FROM durable.steps AS s
        WHERE s.run_id = r.id AND s.kind = 'step' AND s.status = 'completed')::int
        AS completed_steps
FROM durable.runs AS r WHERE r.id = $1;

-- name: get_event
SELECT value FROM durable.events WHERE run_id = $1 AND key = $2;

-- name: watch_progress
-- A handle starts ($2 = 1), renews ($2 = 0) or ends ($2 = -1) a wait on run $1's
-- progress: step records NOTIFY while watch_until is ahead of the clock. Each call keeps
-- it at least $3 seconds ahead; the last waiter to leave clears it, and a waiter that
-- died without leaving costs notifications only until it passes. The row is locked FOR
-- UPDATE (an UPDATE's own lock does not conflict with the FOR KEY SHARE fence of a record
-- write): a write in flight commits before the watch, so the waiter's next read sees it,
-- and a write after the watch sees watch_until. No wake-up falls between the two. A
-- claim meeting the lock skips the run (SKIP LOCKED), so a due run wakes the workers again.
WITH locked AS (
    SELECT id FROM durable.runs WHERE id = $1 FOR UPDATE
), watched AS (
    UPDATE durable.runs AS r SET
        watchers = greatest(r.watchers + $2, 0),
        watch_until = CASE WHEN r.watchers + $2 <= 0 THEN NULL
            ELSE greatest(r.watch_until, durable.now() + make_interval(secs => $3::float8)) END
    FROM locked WHERE r.id = locked.id
    RETURNING r.queue,
        r.status IN ('pending', 'running', 'sleeping', 'waiting') AND r.wake_at <= durable.now()
            AS due
)
SELECT pg_notify('durable_wake', queue) FROM watched WHERE due;

-- name: run_progress
-- What handle.wait() checks: the run's status, whether step $2 is recorded, whether a
-- signal $3 was consumed, and whether event $4 is set (with its value).
SELECT r.status,
    EXISTS (SELECT 1 FROM durable.steps AS s
        WHERE s.run_id = r.id AND s.cursor_key = $2 AND s.status IN ('completed', 'failed'))
        AS step_done,
    EXISTS (SELECT 1 FROM durable.steps AS s
        WHERE s.run_id = r.id AND s.kind = 'signal' AND s.name = $3
          AND s.status = 'completed') AS signal_done,
    EXISTS (SELECT 1 FROM durable.events AS e WHERE e.run_id = r.id AND e.key = $4)
        AS event_set,
    (SELECT e.value FROM durable.events AS e WHERE e.run_id = r.id AND e.key = $4)
        AS event_value
FROM durable.runs AS r WHERE r.id = $1;

-- ==== Operations (issue 6): schedules, run management, retention ====================

-- name: schedule_upsert
-- Create schedule $1 or replace its definition. A changed cron or time zone restarts it
-- from $6 (its next tick from now); otherwise the pending tick is kept. An existing
-- schedule keeps its paused flag. An identical definition is left untouched (no write),
-- so many workers upserting decorated schedules at start cost one read each. A change
-- wakes the workers' schedule loops (durable_wake payload "*schedules").
WITH up AS (
INSERT INTO durable.schedules AS s (
    name, workflow_name, cron, timezone, input, next_fire_at, overlap, catch_up,
    max_catch_up, jitter_seconds, paused, source)
VALUES ($1, $2, $3, $4, $5::json, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (name) DO UPDATE SET
    workflow_name = excluded.workflow_name, cron = excluded.cron, timezone = excluded.timezone,
    input = excluded.input, overlap = excluded.overlap, catch_up = excluded.catch_up,
    max_catch_up = excluded.max_catch_up, jitter_seconds = excluded.jitter_seconds,
    source = excluded.source, updated_at = durable.now(),
    next_fire_at = CASE
        WHEN s.cron = excluded.cron AND s.timezone = excluded.timezone
             AND s.next_fire_at IS NOT NULL
        THEN s.next_fire_at ELSE excluded.next_fire_at END
WHERE (s.workflow_name, s.cron, s.timezone, s.input::text, s.overlap, s.catch_up,
       s.max_catch_up, s.jitter_seconds, s.source)
    IS DISTINCT FROM (excluded.workflow_name, excluded.cron, excluded.timezone,
       excluded.input::text,
       excluded.overlap, excluded.catch_up, excluded.max_catch_up, excluded.jitter_seconds,
       excluded.source)
RETURNING s.name
)
SELECT pg_notify('durable_wake', '*schedules') FROM up;

-- name: schedule_get
-- One schedule with the status of the run its latest tick started (NULL: none or pruned).
SELECT s.name, s.workflow_name, s.cron, s.timezone, s.input, s.next_fire_at, s.last_fired_at,
    s.last_run_id, s.buffered_at, s.overlap, s.catch_up, s.max_catch_up, s.jitter_seconds,
    s.paused, s.source, s.created_at, s.updated_at, r.status AS last_status
FROM durable.schedules AS s LEFT JOIN durable.runs AS r ON r.id = s.last_run_id
WHERE s.name = $1;

-- name: schedule_list
-- Every schedule, by name, with the status of its latest run.
SELECT s.name, s.workflow_name, s.cron, s.timezone, s.input, s.next_fire_at, s.last_fired_at,
    s.last_run_id, s.buffered_at, s.overlap, s.catch_up, s.max_catch_up, s.jitter_seconds,
    s.paused, s.source, s.created_at, s.updated_at, r.status AS last_status
FROM durable.schedules AS s LEFT JOIN durable.runs AS r ON r.id = s.last_run_id
ORDER BY s.name;

-- name: schedule_set_paused
-- Pause ($2 true) or resume schedule $1; resuming restarts it from tick $3 (the next one
-- after now), so ticks that fell while it was paused never fire. Returns no row: unknown.
UPDATE durable.schedules SET
    paused = $2, next_fire_at = coalesce($3, next_fire_at), updated_at = durable.now()
WHERE name = $1
RETURNING name, pg_notify('durable_wake', '*schedules');

-- name: schedule_delete
DELETE FROM durable.schedules WHERE name = $1 RETURNING name;

-- name: schedule_drop_decorated
-- Remove the decorator schedules of workflows $1, served by a worker whose code no longer
-- declares a schedule for them (source 'api' and 'builtin' stay); wakes the schedule loops.
WITH gone AS (
    DELETE FROM durable.schedules
    WHERE source = 'decorator' AND workflow_name = ANY($1::text[])
    RETURNING name
)
SELECT name, pg_notify('durable_wake', '*schedules') FROM gone;

-- name: schedules_due
-- The unpaused schedules of workflows in $1 with a tick due, or with a tick held back by
-- buffer_one whose previous run has finished. Carries the database clock and the status
-- of each schedule's latest run, so the caller plans every tick from one snapshot.
SELECT s.name, s.workflow_name, s.cron, s.timezone, s.input, s.next_fire_at, s.buffered_at,
    s.overlap, s.catch_up, s.max_catch_up, s.jitter_seconds, r.status AS last_status,
    durable.now() AS now
FROM durable.schedules AS s LEFT JOIN durable.runs AS r ON r.id = s.last_run_id
WHERE NOT s.paused AND s.workflow_name = ANY($1::text[])
  AND (s.next_fire_at <= durable.now()
       OR (s.buffered_at IS NOT NULL
           AND (r.status IS NULL OR r.status IN ('completed', 'failed', 'cancelled'))))
ORDER BY s.next_fire_at
LIMIT 100;

-- name: schedules_next_wake
-- Seconds until the next tick of an unpaused schedule of the workflows in $1 (NULL: none).
SELECT extract(epoch FROM min(next_fire_at) - durable.now())::float8
FROM durable.schedules
WHERE NOT paused AND workflow_name = ANY($1::text[]);

-- name: schedule_advance
-- Compare-and-set: move schedule $1 from the state the caller planned from (next tick $2,
-- held tick $3) to the next tick $4 and held tick $5, noting the latest started tick $6
-- and its run $7. Exactly one of any number of workers racing on a tick gets the row;
-- the others see the new next_fire_at and return no row. The caller inserts the tick's
-- runs in the same transaction.
UPDATE durable.schedules SET
    next_fire_at = $4, buffered_at = $5,
    last_fired_at = coalesce($6, last_fired_at), last_run_id = coalesce($7, last_run_id),
    updated_at = durable.now()
WHERE name = $1 AND next_fire_at IS NOT DISTINCT FROM $2
  AND buffered_at IS NOT DISTINCT FROM $3 AND NOT paused
RETURNING name;

-- name: schedule_last_run
-- Note run $2 as schedule $1's latest (a manual trigger, or an idempotent insert that
-- resolved to an existing run).
UPDATE durable.schedules SET last_run_id = $2, last_fired_at = durable.now(),
    updated_at = durable.now()
WHERE name = $1;

-- name: retry_lock
-- Lock a run for engine.retry and read what decides it: its status and error.
SELECT id, status, error, parent_run_id FROM durable.runs WHERE id = $1 FOR UPDATE;

-- name: retry_reset
-- Resume failed run $1: delete its failed records at cursor keys $2 (they run again),
-- move its error to previous_errors and make it due, restarting a workflow timeout from now. Every other
-- record stays, so the retried run replays them instead of running them again.
WITH gone AS (
    DELETE FROM durable.steps
    WHERE run_id = $1 AND cursor_key = ANY($2::text[]) AND status = 'failed'
)
UPDATE durable.runs SET
    status = 'pending', output = NULL, error = NULL, finished_at = NULL,
    wake_at = durable.now(), lease_owner = NULL, lease_expires_at = NULL, waiting_for = NULL,
    deadline_at = durable.now() + (deadline_at - created_at), updated_at = durable.now(),
    lost_executions = 0,
    previous_errors = previous_errors
        || CASE WHEN error IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(error::jsonb) END
WHERE id = $1 AND status = 'failed'
RETURNING pg_notify('durable_wake', queue), pg_notify('durable_run', id::text || ' pending');

-- name: fail_for_retry
-- The first half of an automatic retry (@workflow(retries=)): fail running run $1, fenced by
-- its claim ($2), with error $3, when it has had fewer than $4 automatic retries. Nobody is
-- told: retry_reset and schedule_run_retry follow in the same transaction. No row: no
-- retry left (or the claim was lost), and the run is finished as usual.
UPDATE durable.runs SET
    status = 'failed', error = $3, finished_at = durable.now(), updated_at = durable.now(),
    lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL, waiting_for = NULL
WHERE id = $1 AND attempt = $2 AND status = 'running' AND auto_retries < $4
RETURNING auto_retries, deadline_at;

-- name: schedule_run_retry
-- The last half of an automatic retry: run $1, pending again after retry_reset, is due in
-- $2 seconds as automatic retry number $3, its deadline ($4) unchanged.
UPDATE durable.runs SET
    wake_at = durable.now() + make_interval(secs => $2::float8), auto_retries = $3,
    deadline_at = $4
WHERE id = $1;

-- name: retry_drop_signal
-- For engine.retry(discard_signal=, replace_signal=) on failed run $1 (locked by
-- retry_lock): delete the record of its latest wait that consumed signal $2, and mark that
-- signal rejected with reason $3, unconsumed, kept for inspection. The retried run arms
-- the wait again. Returns the record's cursor key and position; no row: no such record.
WITH rec AS (
    SELECT cursor_key, seq FROM durable.steps
    WHERE run_id = $1 AND kind = 'signal' AND name = $2 AND status = 'completed'
    ORDER BY seq DESC
    LIMIT 1
), sig AS (
    UPDATE durable.signals AS s SET consumed_by = NULL, rejected = $3
    FROM rec WHERE s.run_id = $1 AND s.name = $2 AND s.consumed_by = rec.cursor_key
), gone AS (
    DELETE FROM durable.steps AS st USING rec
    WHERE st.run_id = $1 AND st.cursor_key = rec.cursor_key
)
SELECT cursor_key, seq FROM rec;

-- name: retry_replace_signal
-- Store payload $4 as signal $2 of run $1, consumed by the wait at cursor key $3 (position
-- $5), and record it as that wait's outcome: what engine.retry(replace_signal=) puts in
-- place of the record retry_drop_signal removed.
WITH sig AS (
    INSERT INTO durable.signals (run_id, name, payload, consumed_by)
    VALUES ($1, $2, $4, $3)
    RETURNING payload
)
INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status, output)
SELECT $1, $3, $5, 'signal', $2, 'completed', payload FROM sig;

-- name: fork_run
-- Start run $2 as a copy of run $1 (same workflow, version, input, queue, tags) that
-- reuses $1's completed and failed records before position $3 and the events they set,
-- and links $1 as its source. One statement: the run, its records and events appear together.
WITH src AS (
    SELECT * FROM durable.runs WHERE id = $1
), ins AS (
    INSERT INTO durable.runs (
        id, workflow_name, workflow_version, input, queue, priority, tags, concurrency_key,
        wake_at, deadline_at, traceparent, tracestate, forked_from)
    SELECT $2, workflow_name, workflow_version, input, queue, priority, tags, concurrency_key,
        durable.now(), durable.now() + (deadline_at - created_at), $4, $5, id
    FROM src
    RETURNING id, queue
), copied AS (
    INSERT INTO durable.steps (
        run_id, cursor_key, seq, kind, name, status, output, error, attempt, retry_at,
        started_at, finished_at, earlier_attempts)
    SELECT ins.id, s.cursor_key, s.seq, s.kind, s.name, s.status, s.output, s.error,
        s.attempt, s.retry_at, s.started_at, s.finished_at, s.earlier_attempts
    FROM durable.steps AS s, ins
    WHERE s.run_id = $1 AND s.seq < $3 AND s.status IN ('completed', 'failed')
    RETURNING 1
), events AS (
    -- The events as they stood at position $3: each key's latest set_event before it
    -- (records written before set_event kept its value fall back to the current value).
    INSERT INTO durable.events (run_id, key, value)
    SELECT DISTINCT ON (s.name) ins.id, s.name, coalesce(s.output, e.value)
    FROM durable.steps AS s CROSS JOIN ins
    LEFT JOIN durable.events AS e ON e.run_id = $1 AND e.key = s.name
    WHERE s.run_id = $1 AND s.seq < $3 AND s.kind = 'event' AND s.status = 'completed'
    ORDER BY s.name, s.seq DESC
)
SELECT ins.id, (SELECT count(*) FROM copied) AS copied, pg_notify('durable_wake', ins.queue)
FROM ins;

-- name: pause_run
-- Pause run $1: it keeps its place but is never claimed until resumed. A running run is
-- taken from its worker (its lease-fenced writes fail from now on) and resumes as
-- pending. Returns the status it had and whether it was paused now; no row: no such run.
WITH target AS (
    SELECT id, status FROM durable.runs WHERE id = $1 FOR UPDATE
), paused AS (
    UPDATE durable.runs AS r SET
        status = 'paused',
        paused_from = CASE WHEN target.status = 'running' THEN 'pending' ELSE target.status END,
        wake_at = CASE WHEN target.status = 'running' THEN durable.now() ELSE r.wake_at END,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = durable.now()
    FROM target
    WHERE r.id = target.id AND target.status IN ('pending', 'running', 'sleeping', 'waiting')
    RETURNING r.id
)
SELECT target.status, EXISTS (SELECT 1 FROM paused) AS paused,
    (SELECT pg_notify('durable_run', id::text || ' paused') FROM paused) AS notified,
    (SELECT pg_notify('durable_control', id::text || ' paused') FROM paused) AS stopped
FROM target;

-- name: resume_run
-- Resume paused run $1 in the status it had. A pending or sleeping run keeps its wake
-- time (a start delay, a timer); a waiting run is due at once, since a signal or a
-- child's result may have arrived while it was paused: its replay re-checks and parks.
UPDATE durable.runs SET
    status = paused_from, paused_from = NULL, updated_at = durable.now(),
    wake_at = CASE WHEN paused_from = 'waiting' OR wake_at IS NULL
        THEN durable.now() ELSE wake_at END
WHERE id = $1 AND status = 'paused'
RETURNING status, pg_notify('durable_wake', queue),
    pg_notify('durable_run', id::text || ' ' || status);

-- name: run_wait_state
-- What a parked run waits for: its status and waiting_for entries.
SELECT status, waiting_for FROM durable.runs WHERE id = $1;

-- name: fast_forward_timers
-- Skip the timers run $1 is parked on: pending sleeps end now and retry backoffs are
-- over, and the run is due at once. Only a sleeping or waiting run is touched. Returns
-- the run's status and the number of timers skipped; no row: no such run.
WITH target AS (
    SELECT id, status FROM durable.runs WHERE id = $1 FOR UPDATE
), sleeps AS (
    UPDATE durable.steps AS s
    SET output = to_json(extract(epoch FROM durable.now())::float8)
    FROM target
    WHERE s.run_id = target.id AND target.status IN ('sleeping', 'waiting')
      AND s.kind = 'sleep' AND json_typeof(s.output) = 'number'
      AND (s.output #>> '{}')::float8 > extract(epoch FROM durable.now())
    RETURNING s.cursor_key
), backoffs AS (
    UPDATE durable.steps AS s SET retry_at = durable.now()
    FROM target
    WHERE s.run_id = target.id AND target.status IN ('sleeping', 'waiting')
      AND s.status = 'retrying' AND s.retry_at > durable.now()
    RETURNING s.cursor_key
), woken AS (
    UPDATE durable.runs AS r SET wake_at = durable.now(), updated_at = durable.now()
    FROM target
    WHERE r.id = target.id
      AND (EXISTS (SELECT 1 FROM sleeps) OR EXISTS (SELECT 1 FROM backoffs))
    RETURNING r.queue
)
SELECT target.status,
    (SELECT count(*) FROM sleeps) + (SELECT count(*) FROM backoffs) AS skipped,
    (SELECT pg_notify('durable_wake', queue) FROM woken) AS notified
FROM target;

-- name: prune_runs
-- Delete one batch of finished top-level runs (statuses $2) that finished more than $1
-- seconds ago, oldest first after the keyset position ($3, $4), with their child runs and
-- steps (deleted here: steps have no foreign key); signals and events go by ON DELETE CASCADE. A run whose tree still
-- holds an unfinished run is kept whole. Returns how many runs were deleted, how many
-- candidates were looked at, and the position to continue from. Runs whose id lies in one
-- of the ranges [$6[i], $7[i]) are skipped: the partitioned layout drops those whole.
WITH RECURSIVE roots AS (
    SELECT id, finished_at FROM durable.runs
    WHERE parent_run_id IS NULL AND status IN ('completed', 'failed', 'cancelled')
      AND status = ANY($2::text[])
      AND finished_at < durable.now() - make_interval(secs => $1::float8)
      AND ($3::timestamptz IS NULL OR (finished_at, id) > ($3, $4::uuid))
      AND NOT EXISTS (
        SELECT 1 FROM unnest($6::uuid[], $7::uuid[]) AS p(lo, hi) WHERE id >= lo AND id < hi)
    ORDER BY finished_at, id
    LIMIT $5
), tree AS (
    SELECT id, id AS root FROM roots
    UNION ALL
    SELECT c.id, tree.root FROM durable.runs AS c JOIN tree ON c.parent_run_id = tree.id
), blocked AS (
    SELECT DISTINCT tree.root FROM tree JOIN durable.runs AS r ON r.id = tree.id
    WHERE r.status NOT IN ('completed', 'failed', 'cancelled')
), gone AS (
    DELETE FROM durable.runs AS r USING tree
    WHERE r.id = tree.id AND tree.root NOT IN (SELECT root FROM blocked)
    RETURNING r.id
), gone_steps AS (
    DELETE FROM durable.steps AS s USING gone WHERE s.run_id = gone.id
), last AS (
    SELECT finished_at, id FROM roots ORDER BY finished_at DESC, id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM roots) AS scanned,
    (SELECT finished_at FROM last) AS last_at, (SELECT id FROM last) AS last_id;

-- ---------------------------------------------------------------------------------------
-- The dashboard's reads (durable/dashboard/_queries.py). Each reads through an index or a
-- small table: the pages stay fast with a long history.

-- name: find_runs
-- Runs whose id lies in [$1, $2] (an id prefix padded with 0s and fs: a primary-key range)
-- or whose idempotency key is $3; the columns of list_runs.
SELECT id, workflow_name, workflow_version, status, error, queue, priority, tags, attempt,
    created_at, started_at, finished_at, parent_run_id,
    EXISTS (SELECT 1 FROM durable.workers AS w
        WHERE w.heartbeat_at > durable.now() - interval '60 seconds'
          AND r.workflow_name || '@' || r.workflow_version = ANY(w.workflows))
        AS version_available
FROM durable.runs AS r
WHERE (id BETWEEN $1::uuid AND $2::uuid) OR (idempotency_key IS NOT NULL AND idempotency_key = $3)
ORDER BY created_at DESC, id DESC
LIMIT $4;

-- name: run_waits
-- What the runs $1 wait for and when they wake, plus each run's trace context: the
-- columns RunSummary leaves out.
SELECT id, waiting_for, wake_at, lease_owner, lease_expires_at, idempotency_key,
    parent_cursor, traceparent, durable.now() AS now
FROM durable.runs WHERE id = ANY($1::uuid[]);

-- name: dashboard_workflows
-- Every (name, version) a worker has registered.
SELECT name, version, queue, registered_at, last_seen_at
FROM durable.workflows ORDER BY name, version DESC;

-- name: dashboard_status_counts
-- Runs per workflow and status (the workflows page).
SELECT workflow_name, status, count(*) AS runs
FROM durable.runs GROUP BY workflow_name, status;

-- name: dashboard_workers
-- Registered workers, freshest heartbeat first, with the seconds since it.
SELECT id, hostname, pid, queues, concurrency, workflows, started_at, heartbeat_at,
    extract(epoch FROM durable.now() - heartbeat_at)::float8 AS silent_seconds
FROM durable.workers ORDER BY heartbeat_at DESC;

-- name: dashboard_throughput
-- Runs created since $1, per bucket of $2 seconds and status: the overview chart. A range
-- of runs_created_idx.
SELECT to_timestamp(floor(extract(epoch FROM created_at) / $2::float8) * $2::float8) AS bucket,
    status, count(*) AS runs
FROM durable.runs WHERE created_at >= $1::timestamptz
GROUP BY bucket, status ORDER BY bucket;

-- name: dashboard_stuck_runs
-- Unfinished runs due for more than $1 seconds and not picked up: a running run whose
-- lease expired, or a due run no worker claimed. One range of runs_claim_idx.
SELECT id, workflow_name, status, queue, wake_at, lease_owner,
    extract(epoch FROM durable.now() - wake_at)::float8 AS overdue_seconds
FROM durable.runs
WHERE status IN ('pending', 'running', 'sleeping', 'waiting')
  AND wake_at <= durable.now() - make_interval(secs => $1::float8)
ORDER BY wake_at
LIMIT $2;

-- name: dashboard_queues
-- Per queue: runs due and unclaimed (depth), the seconds the oldest has waited (lag), runs
-- running under a live lease (in flight), parked runs, and the queue's limits. Reads only
-- unfinished runs (runs_claim_idx's predicate).
WITH live AS (
    SELECT queue,
        count(*) FILTER (WHERE wake_at <= durable.now() AND status <> 'running'
            OR status = 'running' AND lease_expires_at <= durable.now()) AS depth,
        extract(epoch FROM durable.now() - min(wake_at) FILTER (
            WHERE wake_at <= durable.now() AND status <> 'running'))::float8 AS lag,
        count(*) FILTER (WHERE status = 'running' AND lease_expires_at > durable.now())
            AS in_flight,
        count(*) FILTER (WHERE status IN ('sleeping', 'waiting')) AS parked
    FROM durable.runs
    WHERE status IN ('pending', 'running', 'sleeping', 'waiting')
    GROUP BY queue
)
SELECT coalesce(live.queue, q.name) AS name, coalesce(live.depth, 0) AS depth, live.lag,
    coalesce(live.in_flight, 0) AS in_flight, coalesce(live.parked, 0) AS parked,
    q.concurrency, q.rate_limit, q.rate_period_seconds, q.key_concurrency,
    q.name IS NOT NULL AS managed
FROM live FULL JOIN durable.queues AS q ON q.name = live.queue
ORDER BY 1;

-- ---------------------------------------------------------------------------------------
-- The partitioned history layout (migration 0011; durable._history_partitions).

-- name: history_layout
-- The partition period and how many periods ahead to keep (no row: not partitioned).
SELECT period_seconds, ahead FROM durable.partitioning;

-- name: partition_history
-- Switch an empty database to the partitioned layout: period $1 seconds, $2 periods ahead.
-- True when it switched now, false when it already was partitioned.
SELECT durable.partition_history($1::float8, $2::int);

-- name: ensure_history_partitions
-- Create the missing partitions of the periods from one before now() to $1 periods ahead
-- (the real clock: run ids carry the application's real time, not durable.now()).
SELECT durable.ensure_history_partitions(
    now() - make_interval(secs => period_seconds),
    now() + make_interval(secs => period_seconds * $1::int))
FROM durable.partitioning;

-- name: history_partitions
-- The time partitions of durable.steps whose period ended more than $1 seconds ago
-- (by durable.now()), oldest first; all of them with $1 NULL.
SELECT name, lo, hi, starts_at, ends_at FROM durable.history_partitions()
WHERE $1::float8 IS NULL OR ends_at <= durable.now() - make_interval(secs => $1::float8);

-- name: drop_history_partition
-- Drop partition $1 with its runs when all of them finished more than $2 seconds ago;
-- the runs deleted, or NULL when the partition is kept (see durable.drop_history_partition).
SELECT durable.drop_history_partition($1, durable.now() - make_interval(secs => $2::float8));

-- name: wal_written
-- The primary's current WAL position: a replica that replayed it has seen every commit so far.
SELECT pg_current_wal_lsn()::text;

-- name: wal_replayed
-- True when this replica replayed the WAL up to $1, or is no replica (then it is fresh;
-- a promoted standby still reports the last position it replayed).
SELECT CASE WHEN pg_is_in_recovery() THEN coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, false)
            ELSE true END;

-- The lifecycle event stream (durable/_client/event_stream.py) and outbound webhooks
-- (durable/_client/webhooks.py, durable/_worker/webhook_dispatch.py). Events are appended by the
-- triggers of migration 0012; a position is (xid, seq).

-- name: events_after
-- Up to $6 events after position ($1, $2), filtered by workflows $3, run $4 and kinds $5
-- (NULL: any), read only below the horizon (durable.event_horizon(): no transaction of
-- this database under it is running), so nothing can later appear behind what is returned.
-- Always one row: the horizon, with NULL event columns when no event matched. held_back:
-- some committed event is above the horizon, so the reader should look again soon rather
-- than wait for the next notification; blocked: the transaction at the horizon is still
-- running (otherwise it ended after the snapshot, and the next read gets past it).
WITH h AS MATERIALIZED (SELECT durable.event_horizon() AS horizon)
SELECT h.horizon,
    exists(SELECT 1 FROM durable.event_log AS x WHERE x.xid >= h.horizon) AS held_back,
    durable.horizon_blocked(h.horizon) AS blocked,
    e.xid, e.seq, e.run_id, e.workflow_name, e.kind, e.step_key,
    e.step_name, e.attempt, e.at
FROM h LEFT JOIN LATERAL (
    SELECT * FROM durable.event_log AS l
    WHERE (l.xid, l.seq) > ($1::bigint, $2::bigint) AND l.xid < h.horizon
      AND ($3::text[] IS NULL OR l.workflow_name = ANY($3::text[]))
      AND ($4::uuid IS NULL OR l.run_id = $4::uuid)
      AND ($5::text[] IS NULL OR l.kind = ANY($5::text[]))
    ORDER BY l.xid, l.seq
    LIMIT $6
) AS e ON true
ORDER BY e.xid, e.seq;

-- name: events_head
-- The position just before the next event any reader can see: where "from now on" starts.
SELECT durable.event_horizon() - 1 AS xid;

-- name: webhook_add
-- A new endpoint; it receives events of transactions still open or started from now on.
-- Tells the dispatchers (a hint: they read the table).
WITH ins AS (
    INSERT INTO durable.webhook_endpoints (
        id, url, secret, kinds, workflows, description, max_attempts, retry_interval,
        timeout_seconds, from_xid)
    VALUES ($1, $2, $3, $4::text[], $5::text[], $6, $7, $8, $9,
        durable.event_horizon())
    RETURNING id, url, kinds, workflows, description, max_attempts, retry_interval,
        timeout_seconds, disabled, created_at
)
SELECT ins.*, pg_notify('durable_events', 'webhooks') FROM ins;

-- name: webhook_list
-- Every endpoint, oldest first, without its secret.
SELECT id, url, kinds, workflows, description, max_attempts, retry_interval,
    timeout_seconds, disabled, created_at
FROM durable.webhook_endpoints ORDER BY created_at, id;

-- name: webhook_get
-- One endpoint, without its secret.
SELECT id, url, kinds, workflows, description, max_attempts, retry_interval,
    timeout_seconds, disabled, created_at
FROM durable.webhook_endpoints WHERE id = $1;

-- name: webhook_remove
-- Delete endpoint $1; deliveries already started fail at their next attempt.
WITH gone AS (DELETE FROM durable.webhook_endpoints WHERE id = $1 RETURNING id)
SELECT id, pg_notify('durable_events', 'webhooks') FROM gone;

-- name: webhook_set_disabled
-- Disable ($2 true) or enable an endpoint; a disabled one gets no new deliveries.
WITH changed AS (
    UPDATE durable.webhook_endpoints SET disabled = $2 WHERE id = $1 RETURNING id)
SELECT id, pg_notify('durable_events', 'webhooks') FROM changed;

-- name: webhook_target
-- What one delivery attempt needs: where to post, the secret to sign with, the timeout.
SELECT url, secret, timeout_seconds, disabled FROM durable.webhook_endpoints WHERE id = $1;

-- name: webhook_any_enabled
SELECT exists(SELECT 1 FROM durable.webhook_endpoints WHERE NOT disabled);

-- name: webhook_cursor
-- The dispatch position: events up to it have their delivery runs.
SELECT xid, seq FROM durable.webhook_cursor;

-- name: webhook_due
-- Up to $3 events after the dispatch position ($1, $2) below the horizon (as in
-- events_after), each with the enabled endpoints it matches ($4: the delivery workflow,
-- whose own events are never delivered). Always one row: the horizon and the position of
-- the last event read, with NULL endpoint columns when nothing matched; held_back as in
-- events_after.
WITH h AS MATERIALIZED (SELECT durable.event_horizon() AS horizon),
batch AS (
    SELECT l.* FROM durable.event_log AS l, h
    WHERE (l.xid, l.seq) > ($1::bigint, $2::bigint) AND l.xid < h.horizon
      AND l.workflow_name <> $4
    ORDER BY l.xid, l.seq
    LIMIT $3
), last AS (
    SELECT xid, seq FROM batch ORDER BY xid DESC, seq DESC LIMIT 1
)
SELECT h.horizon, (SELECT count(*) FROM batch) AS read,
    exists(SELECT 1 FROM durable.event_log AS x WHERE x.xid >= h.horizon) AS held_back,
    durable.horizon_blocked(h.horizon) AS blocked,
    last.xid AS last_xid,
    last.seq AS last_seq, m.*
FROM h LEFT JOIN last ON true LEFT JOIN LATERAL (
    SELECT b.xid, b.seq, b.run_id, b.workflow_name, b.kind, b.step_key, b.step_name,
        b.attempt, b.at, w.id AS endpoint_id, w.max_attempts, w.retry_interval
    FROM batch AS b JOIN durable.webhook_endpoints AS w
        ON NOT w.disabled AND b.xid >= w.from_xid
       AND (cardinality(w.kinds) = 0 OR b.kind = ANY(w.kinds))
       AND (cardinality(w.workflows) = 0 OR b.workflow_name = ANY(w.workflows))
) AS m ON true
ORDER BY m.xid, m.seq, m.endpoint_id;

-- name: webhook_cursor_advance
-- Move the dispatch position from ($1, $2) to ($3, $4); no row when another worker moved
-- it first (both started the same deliveries: their idempotency keys made them one).
UPDATE durable.webhook_cursor SET xid = $3, seq = $4
WHERE xid = $1 AND seq = $2 AND (xid, seq) < ($3::bigint, $4::bigint)
RETURNING xid;

-- name: step_event_triggers
-- (Re)create the step event triggers of migration 0016 on durable.steps: switching to the
-- partitioned layout replaces the table, and a new table has no triggers.
DO $$
BEGIN
    CREATE OR REPLACE TRIGGER steps_event_log_insert AFTER INSERT ON durable.steps
    REFERENCING NEW TABLE AS step_rows_added
    FOR EACH STATEMENT EXECUTE FUNCTION durable.log_step_inserts();
    CREATE OR REPLACE TRIGGER steps_event_log_update AFTER UPDATE ON durable.steps
    REFERENCING OLD TABLE AS step_rows_before NEW TABLE AS step_rows_after
    FOR EACH STATEMENT EXECUTE FUNCTION durable.log_step_updates();
END
$$;

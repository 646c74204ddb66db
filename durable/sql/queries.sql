-- Every statement durable runs at runtime, each named once.
-- Format: a "-- name: NAME" line, comment lines describing it, then the statement.
-- durable._store holds one typed function per name; nothing else sends SQL.
-- Channels: durable_wake (payload: queue) wakes workers; durable_run (payload: "<id> <status>")
-- wakes result waiters and tells workers a run changed under them.

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
WITH ins AS (
    INSERT INTO durable.runs (
        id, workflow_name, workflow_version, input, queue, priority, tags, idempotency_key,
        parent_run_id, parent_cursor, wake_at, deadline_at, traceparent, tracestate)
    VALUES (
        $1, $2, $3, $4::jsonb, $5, $6, $7::text[], $8, $9, $10,
        durable.now() + make_interval(secs => coalesce($11::float8, 0)),
        durable.now() + make_interval(secs => $12::float8), $13, $14)
    ON CONFLICT DO NOTHING
    RETURNING id, queue, $11::float8 IS NULL OR $11::float8 <= 0 AS due
)
SELECT ins.id FROM ins
LEFT JOIN LATERAL (SELECT pg_notify('durable_wake', ins.queue) WHERE ins.due) AS n ON true;

-- name: find_existing_run
-- The run an insert_run conflicted with: same id, or same workflow and idempotency key.
SELECT id FROM durable.runs
WHERE id = $1 OR (workflow_name = $2 AND idempotency_key = $3)
LIMIT 1;

-- name: latest_workflow_version
-- The newest registered (version, queue) of a workflow name, for starts by name.
SELECT version, queue FROM durable.workflows WHERE name = $1 ORDER BY version DESC LIMIT 1;

-- name: register_workflows
-- A worker records the (name, version, queue) triples it serves.
INSERT INTO durable.workflows (name, version, queue)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[])
ON CONFLICT (name, version) DO UPDATE
    SET last_seen_at = durable.now(), queue = excluded.queue;

-- name: register_worker
INSERT INTO durable.workers (id, hostname, pid, queues, concurrency)
VALUES ($1, $2, $3, $4::text[], $5)
ON CONFLICT (id) DO UPDATE SET heartbeat_at = durable.now();

-- name: unregister_worker
DELETE FROM durable.workers WHERE id = $1;

-- name: claim_runs
-- Claim up to $3 due runs of the given queues and (name, version) pairs for worker $1,
-- leasing them for $2 seconds. Due: pending, sleeping or waiting with wake_at passed, or
-- running with an expired lease (a running run's wake_at is its lease expiry).
-- Each row carries every record of the run, so a resume costs this one query.
WITH due AS (
    SELECT id FROM durable.runs
    WHERE status IN ('pending', 'running', 'sleeping', 'waiting')
      AND wake_at <= durable.now()
      AND queue = ANY($4::text[])
      AND (workflow_name, workflow_version) IN (SELECT * FROM unnest($5::text[], $6::int[]))
    ORDER BY wake_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE durable.runs AS r SET
    status = 'running',
    lease_owner = $1,
    lease_expires_at = durable.now() + make_interval(secs => $2),
    wake_at = durable.now() + make_interval(secs => $2),
    attempt = r.attempt + 1,
    started_at = coalesce(r.started_at, durable.now()),
    updated_at = durable.now()
FROM due
WHERE r.id = due.id
RETURNING r.id, r.workflow_name, r.workflow_version, r.input, r.attempt, r.queue,
    r.deadline_at, r.parent_run_id, r.traceparent, r.tracestate,
    (SELECT json_agg(json_build_object(
            'key', s.cursor_key, 'seq', s.seq, 'kind', s.kind, 'name', s.name,
            'status', s.status, 'output', s.output, 'error', s.error,
            'attempt', s.attempt, 'retry_at', s.retry_at))
        FROM durable.steps AS s WHERE s.run_id = r.id) AS records;

-- name: next_wake
-- Seconds until the earliest future wake of any unfinished run (NULL: none), so an idle
-- worker sleeps exactly until the next timer, lease expiry or delayed start.
SELECT extract(epoch FROM min(wake_at) - durable.now())::float8 FROM durable.runs
WHERE status IN ('pending', 'running', 'sleeping', 'waiting') AND wake_at > durable.now();

-- name: heartbeat_runs
-- Extend the leases of a worker's runs in one statement; returns the runs it still holds.
UPDATE durable.runs SET
    lease_expires_at = durable.now() + make_interval(secs => $2),
    wake_at = durable.now() + make_interval(secs => $2)
WHERE id = ANY($3::uuid[]) AND lease_owner = $1 AND status = 'running'
RETURNING id;

-- name: heartbeat_worker
UPDATE durable.workers SET heartbeat_at = durable.now() WHERE id = $1;

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
-- under this claim ($2 = the attempt that claimed it). A completed or failed record is
-- final; only a 'retrying' record (a failed attempt that will run again) is replaced.
-- Returns no row when the lease was lost or the key was already recorded.
WITH fence AS (
    SELECT id FROM durable.runs
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    FOR KEY SHARE
)
INSERT INTO durable.steps AS s (
    run_id, cursor_key, seq, kind, name, status, output, error, attempt, retry_at,
    started_at, finished_at)
SELECT id, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10,
    durable.now() + make_interval(secs => $11::float8), $12, durable.now()
FROM fence
ON CONFLICT (run_id, cursor_key) DO UPDATE SET
    status = excluded.status, output = excluded.output, error = excluded.error,
    attempt = excluded.attempt, retry_at = excluded.retry_at, finished_at = excluded.finished_at
WHERE s.status = 'retrying'
RETURNING extract(epoch FROM s.retry_at)::float8 AS retry_at;

-- name: park_run
-- Suspend a running run (sleeping or waiting) until wake_at ($4; NULL: until woken),
-- freeing its slot. Fenced by the claim like record_step.
UPDATE durable.runs SET
    status = $3, wake_at = least($4::timestamptz, deadline_at),
    lease_owner = NULL, lease_expires_at = NULL, updated_at = durable.now()
WHERE id = $1 AND attempt = $2 AND status = 'running'
RETURNING id;

-- name: finish_run
-- Store a run's final status with its output or error, wake a waiting parent and tell
-- result waiters, all in one statement. Fenced by the claim like record_step.
WITH done AS (
    UPDATE durable.runs SET
        status = $3, output = $4::jsonb, error = $5::jsonb,
        finished_at = durable.now(), updated_at = durable.now(),
        lease_owner = NULL, lease_expires_at = NULL, wake_at = NULL
    WHERE id = $1 AND attempt = $2 AND status = 'running'
    RETURNING id, parent_run_id
), parent AS (
    UPDATE durable.runs AS p SET wake_at = durable.now()
    FROM done
    WHERE p.id = done.parent_run_id AND p.status = 'waiting'
    RETURNING p.queue
)
SELECT pg_notify('durable_run', $1::text || ' ' || $3),
    (SELECT pg_notify('durable_wake', queue) FROM parent)
FROM done;

-- name: run_outcome
-- The status, output and error of one run: what handle.result() waits for.
SELECT status, output, error FROM durable.runs WHERE id = $1;

-- name: get_run
SELECT id, workflow_name, workflow_version, status, input, output, error, queue, priority,
    tags, attempt, created_at, started_at, finished_at, parent_run_id, parent_cursor,
    wake_at, lease_owner, idempotency_key
FROM durable.runs WHERE id = $1;

-- name: run_steps
-- The steps timeline of one run, in call order.
SELECT cursor_key, seq, kind, name, status, output, error, attempt, started_at, finished_at,
    retry_at
FROM durable.steps WHERE run_id = $1 ORDER BY seq, cursor_key;

-- name: run_events
SELECT key, value FROM durable.events WHERE run_id = $1 ORDER BY key;

-- name: run_children
SELECT id FROM durable.runs WHERE parent_run_id = $1 ORDER BY created_at, id;

-- name: list_runs
-- One keyset page of runs, newest first. Every filter is optional (NULL: any).
-- ($8, $9) is the (created_at, id) of the last row of the previous page.
SELECT id, workflow_name, workflow_version, status, error, queue, priority, tags, attempt,
    created_at, started_at, finished_at, parent_run_id
FROM durable.runs
WHERE ($1::text IS NULL OR workflow_name = $1)
  AND ($2::text[] IS NULL OR status = ANY($2::text[]))
  AND ($3::text IS NULL OR tags @> ARRAY[$3::text])
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::uuid IS NULL OR parent_run_id = $6)
  AND ($7::text IS NULL OR queue = $7)
  AND ($8::timestamptz IS NULL OR (created_at, id) < ($8, $9::uuid))
ORDER BY created_at DESC, id DESC
LIMIT $10;

-- name: db_now
SELECT durable.now();

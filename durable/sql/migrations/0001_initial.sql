-- The initial schema of durable. Applied once, under an advisory lock, by durable._migrations.
-- durable._models mirrors every table here; tests/integration/test_schema.py proves they agree.

CREATE SCHEMA IF NOT EXISTS durable;

-- One clock for every timer: tests shift it for all connections at once.
CREATE TABLE durable.clock (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    offset_seconds double precision NOT NULL DEFAULT 0
);
INSERT INTO durable.clock (id, offset_seconds) VALUES (true, 0);

CREATE FUNCTION durable.now() RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT now() + make_interval(secs => coalesce((SELECT offset_seconds FROM durable.clock), 0))
$$;

CREATE TABLE durable.runs (
    id uuid PRIMARY KEY,
    workflow_name text NOT NULL,
    workflow_version integer NOT NULL DEFAULT 1,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN (
        'pending', 'running', 'sleeping', 'waiting', 'paused', 'completed', 'failed', 'cancelled')),
    input jsonb NOT NULL,
    output jsonb,
    error jsonb,
    queue text NOT NULL DEFAULT 'default',
    priority integer NOT NULL DEFAULT 0,
    tags text[] NOT NULL DEFAULT '{}',
    idempotency_key text,
    parent_run_id uuid,
    parent_cursor text,
    -- Claimable when wake_at <= durable.now(): start delay, timer, or (while running) lease expiry.
    wake_at timestamptz,
    lease_owner text,
    lease_expires_at timestamptz,
    attempt integer NOT NULL DEFAULT 0,
    deadline_at timestamptz,
    traceparent text,
    tracestate text,
    created_at timestamptz NOT NULL DEFAULT durable.now(),
    started_at timestamptz,
    finished_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT durable.now()
);

-- The claim scans only unfinished runs, in wake order: finished history never slows it.
CREATE INDEX runs_claim_idx ON durable.runs (wake_at)
    WHERE status IN ('pending', 'running', 'sleeping', 'waiting');
CREATE UNIQUE INDEX runs_idempotency_idx ON durable.runs (workflow_name, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_created_idx ON durable.runs (created_at DESC, id DESC);
CREATE INDEX runs_parent_idx ON durable.runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE INDEX runs_tags_idx ON durable.runs USING gin (tags);

CREATE TABLE durable.steps (
    run_id uuid NOT NULL REFERENCES durable.runs (id) ON DELETE CASCADE,
    cursor_key text NOT NULL,
    seq integer NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    -- 'retrying' holds the last failed attempt of a step that will run again.
    status text NOT NULL CHECK (status IN ('completed', 'failed', 'retrying')),
    output jsonb,
    error jsonb,
    attempt integer NOT NULL DEFAULT 1,
    retry_at timestamptz,
    started_at timestamptz,
    finished_at timestamptz NOT NULL DEFAULT durable.now(),
    PRIMARY KEY (run_id, cursor_key)
);

CREATE TABLE durable.signals (
    run_id uuid NOT NULL REFERENCES durable.runs (id) ON DELETE CASCADE,
    name text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    payload jsonb,
    idempotency_key text,
    consumed_by text,
    created_at timestamptz NOT NULL DEFAULT durable.now(),
    PRIMARY KEY (run_id, name, seq)
);
CREATE UNIQUE INDEX signals_dedupe_idx ON durable.signals (run_id, name, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE durable.events (
    run_id uuid NOT NULL REFERENCES durable.runs (id) ON DELETE CASCADE,
    key text NOT NULL,
    value jsonb,
    updated_at timestamptz NOT NULL DEFAULT durable.now(),
    PRIMARY KEY (run_id, key)
);

CREATE TABLE durable.schedules (
    name text PRIMARY KEY,
    workflow_name text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL DEFAULT 'UTC',
    input jsonb NOT NULL DEFAULT '{"args": [], "kwargs": {}}',
    next_fire_at timestamptz,
    last_fired_at timestamptz,
    overlap text NOT NULL DEFAULT 'skip' CHECK (overlap IN ('skip', 'allow', 'buffer_one')),
    catch_up text NOT NULL DEFAULT 'skip_missed' CHECK (catch_up IN ('skip_missed', 'run_missed')),
    jitter_seconds double precision NOT NULL DEFAULT 0,
    paused boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT durable.now()
);

-- (name, version) pairs some worker has served: start-by-name resolves against these.
CREATE TABLE durable.workflows (
    name text NOT NULL,
    version integer NOT NULL,
    queue text NOT NULL DEFAULT 'default',
    registered_at timestamptz NOT NULL DEFAULT durable.now(),
    last_seen_at timestamptz NOT NULL DEFAULT durable.now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE durable.workers (
    id text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    queues text[] NOT NULL DEFAULT '{}',
    concurrency integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT durable.now(),
    heartbeat_at timestamptz NOT NULL DEFAULT durable.now()
);

-- Queues with limits that hold across all workers: concurrency, rate, per-key concurrency.
-- A queue with a row here is "managed": workers claim its runs under the row's lock.

CREATE TABLE durable.queues (
    name text PRIMARY KEY,
    concurrency integer CHECK (concurrency > 0),
    rate_limit integer CHECK (rate_limit > 0),
    rate_period_seconds double precision CHECK (rate_period_seconds > 0),
    key_concurrency integer NOT NULL DEFAULT 1 CHECK (key_concurrency > 0),
    updated_at timestamptz NOT NULL DEFAULT durable.now(),
    CHECK ((rate_limit IS NULL) = (rate_period_seconds IS NULL))
);

-- First claims of rate-limited queues' runs, kept for one rate window.
CREATE TABLE durable.queue_starts (
    queue text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT durable.now(),
    run_id uuid NOT NULL,
    PRIMARY KEY (queue, started_at, run_id)
);

ALTER TABLE durable.runs ADD COLUMN concurrency_key text;

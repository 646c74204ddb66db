-- Issue 11, "the verbs users of other engines expect". Only new columns and indexes:
-- nothing here reads or casts the payload columns (input, output, error, values).

-- Poison runs: how many executions in a row lost their lease before recording or parking
-- anything, judged at each claim against claimed_at (see claim_runs).
ALTER TABLE durable.runs ADD COLUMN lost_executions integer NOT NULL DEFAULT 0;
ALTER TABLE durable.runs ADD COLUMN claimed_at timestamptz;

-- Run-level retries (@workflow(retries=)): how many automatic retries the run has had, and
-- the error of every failed attempt before the current one (automatic or engine.retry).
ALTER TABLE durable.runs ADD COLUMN auto_retries integer NOT NULL DEFAULT 0;
ALTER TABLE durable.runs ADD COLUMN previous_errors jsonb NOT NULL DEFAULT '[]';

-- Progress: the fraction and message of the latest durable.set_progress, and the step
-- count a workflow version declares (@workflow(expected_steps=)), registered by workers
-- so that a client without the code can turn completed steps into a fraction.
ALTER TABLE durable.runs ADD COLUMN progress_fraction double precision;
ALTER TABLE durable.runs ADD COLUMN progress_message text;
ALTER TABLE durable.workflows ADD COLUMN expected_steps integer;

-- Resource scoping and metadata: the tenant (or user, or account) a run belongs to, listed
-- through its own index, and a small JSON object of the caller's labels.
ALTER TABLE durable.runs ADD COLUMN resource_id text;
ALTER TABLE durable.runs ADD COLUMN metadata jsonb;
CREATE INDEX runs_resource_idx ON durable.runs (resource_id, created_at DESC, id DESC)
    WHERE resource_id IS NOT NULL;

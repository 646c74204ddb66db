-- Issue 11, "the verbs users of other engines expect". Only new columns and indexes:
-- nothing here reads or casts the payload columns (input, output, error, values).

-- Poison runs: how many executions in a row lost their lease before recording or parking
-- anything, judged at each claim against claimed_at (see claim_runs).
ALTER TABLE durable.runs ADD COLUMN lost_executions integer NOT NULL DEFAULT 0;
ALTER TABLE durable.runs ADD COLUMN claimed_at timestamptz;

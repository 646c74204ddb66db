-- Durable waits: what a parked run waits for, child depth, step-progress notifications,
-- and the workflows each live worker serves.

ALTER TABLE durable.runs
    ADD COLUMN waiting_for text[],
    ADD COLUMN depth integer NOT NULL DEFAULT 0,
    ADD COLUMN notify_steps boolean NOT NULL DEFAULT false;

-- 'waiting' holds an armed signal wait: retry_at is its deadline.
ALTER TABLE durable.steps DROP CONSTRAINT steps_status_check;
ALTER TABLE durable.steps ADD CONSTRAINT steps_status_check
    CHECK (status IN ('completed', 'failed', 'retrying', 'waiting'));

CREATE INDEX signals_pending_idx ON durable.signals (run_id, name, seq)
    WHERE consumed_by IS NULL;

ALTER TABLE durable.workers ADD COLUMN workflows text[] NOT NULL DEFAULT '{}';

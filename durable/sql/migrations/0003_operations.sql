-- Operations: schedule policies and bookkeeping, forked and paused runs, history pruning.

-- Schedules: how many missed ticks run_missed starts, the tick buffer_one holds back,
-- the run a tick started last (the overlap policies look at it), and who defined it.
ALTER TABLE durable.schedules
    ADD COLUMN max_catch_up integer NOT NULL DEFAULT 10 CHECK (max_catch_up >= 1),
    ADD COLUMN buffered_at timestamptz,
    ADD COLUMN last_run_id uuid,
    ADD COLUMN source text NOT NULL DEFAULT 'api'
        CHECK (source IN ('api', 'decorator', 'builtin')),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT durable.now();

-- The scheduler loop reads the due, unpaused schedules in fire order.
CREATE INDEX schedules_due_idx ON durable.schedules (next_fire_at) WHERE NOT paused;

-- forked_from: the run a fork copied its records from. paused_from: the status a paused
-- run returns to on resume (a paused run is never claimed).
ALTER TABLE durable.runs
    ADD COLUMN forked_from uuid,
    ADD COLUMN paused_from text
        CHECK (paused_from IN ('pending', 'running', 'sleeping', 'waiting'));

-- Pruning walks finished top-level runs oldest first; unfinished runs never enter it.
CREATE INDEX runs_prune_idx ON durable.runs (finished_at, id)
    WHERE parent_run_id IS NULL AND status IN ('completed', 'failed', 'cancelled');

-- Payloads as json, not jsonb: jsonb reorders object keys (and drops duplicate ones), so a
-- replay saw {"ant": 2, "zebra": 1} where the first execution saw {"zebra": 1, "ant": 2}.
-- json keeps the exact text the codec wrote; the codec refuses what it could not store
-- exactly, so every stored payload still converts to jsonb for ad-hoc queries.
-- Each ALTER rewrites its table once, under an exclusive lock: on a large database, run
-- `durable migrate` while no worker runs. Rows stored before keep jsonb's key order.
ALTER TABLE durable.runs
    ALTER COLUMN input TYPE json USING input::json,
    ALTER COLUMN output TYPE json USING output::json,
    ALTER COLUMN error TYPE json USING error::json;
ALTER TABLE durable.steps
    ALTER COLUMN output TYPE json USING output::json,
    ALTER COLUMN error TYPE json USING error::json;
ALTER TABLE durable.signals ALTER COLUMN payload TYPE json USING payload::json;
ALTER TABLE durable.events ALTER COLUMN value TYPE json USING value::json;
ALTER TABLE durable.schedules
    ALTER COLUMN input DROP DEFAULT,
    ALTER COLUMN input TYPE json USING input::json,
    ALTER COLUMN input SET DEFAULT '{"args": [], "kwargs": {}}';

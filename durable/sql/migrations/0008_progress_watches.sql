-- Progress watches that end: handle.wait(step=/signal=) counts itself in `watchers` while
-- it waits and keeps `watch_until` ahead of the clock; step records NOTIFY only while
-- watch_until is in the future. The last waiter to leave clears it, and a waiter that
-- died without leaving stops costing notifications once watch_until passes. Replaces the
-- notify_steps flag, which was never cleared.
ALTER TABLE durable.runs
    DROP COLUMN notify_steps,
    ADD COLUMN watchers integer NOT NULL DEFAULT 0,
    ADD COLUMN watch_until timestamptz;


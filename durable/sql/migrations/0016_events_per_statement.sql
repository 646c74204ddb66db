-- Lifecycle events appended once per statement, not once per row.
--
-- The row triggers of 0012 ran a PL/pgSQL call, a one-row INSERT, a clock reading and a
-- NOTIFY for every run a claim or a finish changed and for every step record: about a
-- quarter of a 16-run claim's time under EXPLAIN ANALYZE. These statement triggers read
-- the statement's transition tables and append all of its events in one INSERT, with one
-- clock reading and one NOTIFY. Which events are written, and in which transaction, is
-- unchanged.
--
-- Transition tables cannot be combined with a column list (UPDATE OF status), so the run
-- trigger fires for every UPDATE of durable.runs and keeps only the rows whose status
-- changed. A statement changes each row at most once, so old and new rows pair by key.
-- The pairing is a join the function's plan keeps from its first call, when a statement
-- may have changed one row: planned as a nested loop, a 1,000-run claim then spent
-- 107 ms in it. Nested loops are off inside these functions (a hash join: 3.7 ms).

DROP TRIGGER runs_event_log ON durable.runs;
DROP TRIGGER steps_event_log_insert ON durable.steps;
DROP TRIGGER steps_event_log_update ON durable.steps;
DROP FUNCTION durable.log_run_event();
DROP FUNCTION durable.log_step_event();

CREATE FUNCTION durable.log_run_events() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
BEGIN
    INSERT INTO durable.event_log (run_id, workflow_name, kind, attempt, at)
    SELECT n.id, n.workflow_name, e.kind, n.attempt, (SELECT durable.now())
    FROM run_rows_before AS o
    JOIN run_rows_after AS n ON n.id = o.id
    CROSS JOIN LATERAL (SELECT durable.run_event_kind(
        o.status, n.status, o.started_at IS NOT NULL) AS kind) AS e
    WHERE o.status IS DISTINCT FROM n.status AND e.kind IS NOT NULL;
    IF FOUND THEN
        PERFORM pg_notify('durable_events', 'event');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_event_log AFTER UPDATE ON durable.runs
REFERENCING OLD TABLE AS run_rows_before NEW TABLE AS run_rows_after
FOR EACH STATEMENT EXECUTE FUNCTION durable.log_run_events();

-- A step record written (completed, failed, or retrying: an attempt failed and the step
-- runs again). Only steps: sleeps, signals, children and recorded values are not step
-- events. No NOTIFY here (0012): readers see step events with the run's next transition.
CREATE FUNCTION durable.log_step_inserts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO durable.event_log (
        run_id, workflow_name, kind, step_key, step_name, attempt, at)
    SELECT n.run_id, r.workflow_name, 'step.' || n.status, n.cursor_key, n.name,
        n.attempt, (SELECT durable.now())
    FROM step_rows_added AS n JOIN durable.runs AS r ON r.id = n.run_id
    WHERE n.kind = 'step' AND n.status IN ('completed', 'failed', 'retrying');
    RETURN NULL;
END
$$;

-- A step record replaced: a retrying attempt's record by the next attempt's outcome. The
-- run's name is a sub-select, not a join: with nested loops off, a join would read all of
-- durable.runs. Every step has its run (steps are written under a lock on it, deleted
-- with it); the filter keeps the old triggers' behaviour if one ever had none.
CREATE FUNCTION durable.log_step_updates() RETURNS trigger LANGUAGE plpgsql
SET enable_nestloop = off AS $$
BEGIN
    INSERT INTO durable.event_log (
        run_id, workflow_name, kind, step_key, step_name, attempt, at)
    SELECT e.run_id, e.workflow_name, e.kind, e.step_key, e.step_name, e.attempt,
        (SELECT durable.now())
    FROM (
        SELECT n.run_id, 'step.' || n.status AS kind, n.cursor_key AS step_key,
            n.name AS step_name, n.attempt,
            (SELECT r.workflow_name FROM durable.runs AS r WHERE r.id = n.run_id)
                AS workflow_name
        FROM step_rows_before AS o
        JOIN step_rows_after AS n ON n.run_id = o.run_id AND n.cursor_key = o.cursor_key
        WHERE n.kind = 'step' AND n.status IN ('completed', 'failed', 'retrying')
            AND (o.status, o.attempt) IS DISTINCT FROM (n.status, n.attempt)
    ) AS e
    WHERE e.workflow_name IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER steps_event_log_insert AFTER INSERT ON durable.steps
REFERENCING NEW TABLE AS step_rows_added
FOR EACH STATEMENT EXECUTE FUNCTION durable.log_step_inserts();

CREATE TRIGGER steps_event_log_update AFTER UPDATE ON durable.steps
REFERENCING OLD TABLE AS step_rows_before NEW TABLE AS step_rows_after
FOR EACH STATEMENT EXECUTE FUNCTION durable.log_step_updates();

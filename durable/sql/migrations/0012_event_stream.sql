-- The durable lifecycle event stream (engine.events) and outbound webhook endpoints.
--
-- Triggers on runs and steps append one row per lifecycle transition to event_log, in the
-- same transaction as the change they describe: whatever code path changes a run (claim,
-- park, finish, cancel, retry), its event commits with it or not at all. Nothing in the
-- Python hot path changes.
--
-- Position: (xid, seq), the writing transaction's id and a sequence number. A sequence alone
-- is not safe to tail: numbers are taken before commit, so 99 may become visible after 100.
-- Readers only read rows whose xid is below a horizon (durable.event_horizon()): no
-- transaction of this database under it is still running, and every transaction that
-- starts later gets a larger xid, so no row can appear below a position a reader has passed.

CREATE TABLE durable.event_log (
    xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    seq bigint GENERATED ALWAYS AS IDENTITY,
    run_id uuid NOT NULL,
    workflow_name text NOT NULL,
    kind text NOT NULL,
    step_key text,
    step_name text,
    attempt integer,
    at timestamptz NOT NULL DEFAULT durable.now(),
    PRIMARY KEY (xid, seq)
);
-- run_id filters and deletion with the run (no foreign key: the writes stay cheap).
CREATE INDEX event_log_run_idx ON durable.event_log (run_id);

-- The horizon of the calling statement's snapshot: the oldest transaction that was still
-- running when it was taken and may belong to this database (its events are not visible
-- yet), else the snapshot's xmax. Transactions that pg_stat_activity shows in another
-- database cannot write here and do not hold readers back (CREATE DATABASE on the same
-- server, say); where it cannot tell (no privilege to see them, prepared transactions), a
-- transaction counts, so the horizon is never too high, only sometimes lower than needed.
-- xip holds 64-bit ids, backend_xid 32-bit ones: running ids are within 2^31 of each other,
-- so the low 32 bits identify them.
CREATE FUNCTION durable.event_horizon() RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    snap pg_snapshot := pg_current_snapshot();
    here oid := (SELECT oid FROM pg_database WHERE datname = current_database());
    elsewhere bigint[];
BEGIN
    -- Read the sessions once (a correlated look per running transaction re-reads them
    -- all each time); plpgsql keeps the plans for the session.
    elsewhere := ARRAY(
        SELECT a.backend_xid::text::bigint FROM pg_stat_get_activity(NULL) AS a
        WHERE a.datid IS DISTINCT FROM here AND a.backend_xid IS NOT NULL);
    RETURN least(
        pg_snapshot_xmax(snap)::text::bigint,
        (SELECT min(x::text::bigint) FROM pg_snapshot_xip(snap) AS x
         WHERE NOT (x::text::bigint % 4294967296 = ANY (elsewhere))));
END
$$;

-- Whether the transaction a horizon stops at is still running. When it is not, it ended
-- between the snapshot and the look at pg_stat_activity, and a new read gets past it.
CREATE FUNCTION durable.horizon_blocked(horizon bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT horizon < pg_snapshot_xmax(pg_current_snapshot())::text::bigint
        AND pg_xact_status(horizon::text::xid8) IS NOT DISTINCT FROM 'in progress'
$$;

-- A run's status change as an event kind (NULL: not a lifecycle event). Entering running
-- from pending for the first time starts the run; from any other state (a timer, a
-- signal, a child, a resume after pause or release) resumes it. A running run reclaimed
-- after its lease expired is running already: no event.
CREATE FUNCTION durable.run_event_kind(old_status text, new_status text, was_started boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN new_status IN ('completed', 'failed', 'cancelled') THEN 'run.' || new_status
        WHEN new_status = 'running' AND old_status = 'pending' AND NOT was_started
            THEN 'run.started'
        WHEN new_status = 'running' THEN 'run.resumed'
        WHEN new_status IN ('sleeping', 'waiting', 'paused')
            AND old_status IN ('pending', 'running') THEN 'run.suspended'
    END
$$;

CREATE FUNCTION durable.log_run_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text := durable.run_event_kind(OLD.status, NEW.status, OLD.started_at IS NOT NULL);
BEGIN
    IF kind IS NOT NULL THEN
        INSERT INTO durable.event_log (run_id, workflow_name, kind, attempt)
        VALUES (NEW.id, NEW.workflow_name, kind, NEW.attempt);
        PERFORM pg_notify('durable_events', 'event');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_event_log AFTER UPDATE OF status ON durable.runs
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION durable.log_run_event();

-- A step record written or replaced: completed, failed (retries exhausted) or retrying
-- (an attempt failed and the step runs again). Only steps: sleeps, signals, children and
-- recorded values are not step events. No NOTIFY here: it would put the notification
-- queue's lock into every step commit (measured: most of the stream's cost on the step
-- path). Readers see step events with the run's next transition, or at their next poll.
CREATE FUNCTION durable.log_step_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO durable.event_log (run_id, workflow_name, kind, step_key, step_name, attempt)
    SELECT NEW.run_id, r.workflow_name, 'step.' || NEW.status, NEW.cursor_key, NEW.name,
        NEW.attempt
    FROM durable.runs AS r WHERE r.id = NEW.run_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER steps_event_log_insert AFTER INSERT ON durable.steps
FOR EACH ROW WHEN (NEW.kind = 'step' AND NEW.status IN ('completed', 'failed', 'retrying'))
EXECUTE FUNCTION durable.log_step_event();

CREATE TRIGGER steps_event_log_update AFTER UPDATE ON durable.steps
FOR EACH ROW WHEN (NEW.kind = 'step' AND NEW.status IN ('completed', 'failed', 'retrying')
    AND (OLD.status, OLD.attempt) IS DISTINCT FROM (NEW.status, NEW.attempt))
EXECUTE FUNCTION durable.log_step_event();

-- Events go with their runs (prune, delete_run): one statement per delete.
CREATE FUNCTION durable.drop_run_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM durable.event_log AS e USING gone WHERE e.run_id = gone.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_drop_events AFTER DELETE ON durable.runs
REFERENCING OLD TABLE AS gone
FOR EACH STATEMENT EXECUTE FUNCTION durable.drop_run_events();

-- Outbound webhook endpoints. The secret stays in this row: deliveries carry only the
-- endpoint id. Empty kinds or workflows match every event kind or workflow.
CREATE TABLE durable.webhook_endpoints (
    id uuid PRIMARY KEY,
    url text NOT NULL,
    secret text NOT NULL,
    kinds text[] NOT NULL DEFAULT '{}',
    workflows text[] NOT NULL DEFAULT '{}',
    description text NOT NULL DEFAULT '',
    -- Attempts per delivery, and the wait before the second (doubled after each failure).
    max_attempts integer NOT NULL DEFAULT 8 CHECK (max_attempts >= 1),
    retry_interval double precision NOT NULL DEFAULT 5 CHECK (retry_interval >= 0),
    timeout_seconds double precision NOT NULL DEFAULT 10 CHECK (timeout_seconds > 0),
    -- Only events of transactions at or after this xid (the horizon when it was added).
    from_xid bigint NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT durable.now()
);

-- How far the webhook dispatcher has turned events into delivery runs (one row, locked
-- by the one worker dispatching at a time). Starts at the end of the log as it was when
-- webhooks were installed.
CREATE TABLE durable.webhook_cursor (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    xid bigint NOT NULL,
    seq bigint NOT NULL
);
INSERT INTO durable.webhook_cursor (id, xid, seq)
VALUES (true, pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1,
    9223372036854775807);

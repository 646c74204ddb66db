-- Every attempt of a step: when the record of a failed attempt that is retried is replaced
-- by the next attempt's record, the replaced attempt moves into earlier_attempts, oldest
-- first, as {attempt, error, started_at, finished_at}. Only new columns: the record
-- statements append to it on conflict, so a step that completes at once never touches it.
-- jsonb: an array keeps its order, and step errors are stored escaped (no NUL), so every
-- error is castable from json.
ALTER TABLE durable.steps ADD COLUMN earlier_attempts jsonb NOT NULL DEFAULT '[]';

-- The earlier attempts of a step once its record (status, attempt) is replaced by the
-- record of next_attempt: the replaced attempt is appended when it was a failed attempt
-- that is retried ('retrying'), is older than the new one and is not there yet, so
-- writing the same record twice never adds an attempt twice. A 'waiting' record (a signal
-- wait) is no attempt. STABLE, not IMMUTABLE: timestamps turn into JSON in the session's time zone.
CREATE FUNCTION durable.keep_attempt(
    earlier jsonb, status text, attempt integer, next_attempt integer, error json,
    started_at timestamptz, finished_at timestamptz
) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN status = 'retrying' AND attempt < next_attempt
            AND NOT earlier @> jsonb_build_array(jsonb_build_object('attempt', attempt))
        THEN earlier || jsonb_build_array(jsonb_build_object(
            'attempt', attempt, 'error', error::jsonb,
            'started_at', started_at, 'finished_at', finished_at))
        ELSE earlier END
$$;

-- A signal whose payload does not match the type of the wait that found it is rejected:
-- kept unconsumed with the reason, skipped by every wait, and shown by get_run.
ALTER TABLE durable.signals ADD COLUMN rejected text;

-- The workflow timeout each worker serves, so a start by name from a process without the
-- code sets the same deadline as one with it.
ALTER TABLE durable.workflows ADD COLUMN timeout_seconds double precision;

-- A signal whose payload does not match the type of the wait that found it is rejected:
-- kept unconsumed with the reason, skipped by every wait, and shown by get_run.
ALTER TABLE durable.signals ADD COLUMN rejected text;

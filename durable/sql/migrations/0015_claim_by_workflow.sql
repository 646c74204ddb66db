-- The claim looks up due runs per served (workflow, version) in this index, in claim order
-- (priority first, then oldest due): due runs of workflows a worker does not serve are
-- never read, however many there are. Runs of managed queues (concurrency keys) are
-- claimed elsewhere and stay out of it.
CREATE INDEX runs_claim_workflow_idx ON durable.runs
    (workflow_name, workflow_version, priority DESC, wake_at)
    WHERE status IN ('pending', 'running', 'sleeping', 'waiting') AND concurrency_key IS NULL;

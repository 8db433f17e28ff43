-- Webhook analyses coalesce: a delivery marks its head `queued` once its job is in the queue, and
-- the job that runs first claims every queued head of the repository (up to a batch) and
-- analyses them together, so a burst of deliveries costs a few batches instead of one pipeline
-- per head. `claimed_by` names the job that claimed a head (its retry may claim it again).
ALTER TABLE analysis_runs DROP CONSTRAINT analysis_runs_status_check;
ALTER TABLE analysis_runs ADD CONSTRAINT analysis_runs_status_check
    CHECK (status IN ('queued', 'running', 'done', 'failed'));
ALTER TABLE analysis_runs ADD COLUMN claimed_by TEXT;
CREATE INDEX analysis_runs_queued ON analysis_runs (repo_id, started_at)
    WHERE status = 'queued';

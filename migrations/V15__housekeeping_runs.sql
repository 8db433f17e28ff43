-- One row per housekeeping period: the worker process that inserts it runs that period's pass,
-- so N worker processes prune once per period, not N times. Rows older than a week are removed
-- by the pass itself.
CREATE TABLE housekeeping_runs (
    period     TEXT PRIMARY KEY,
    worker     TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

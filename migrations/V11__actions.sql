-- Acting from the dashboard (plan, then apply), the audit of every write to GitHub, the digest
-- issue of each repository, and outgoing webhook deliveries.

CREATE TABLE action_plans (
    plan_id     TEXT PRIMARY KEY,
    repo_id     BIGINT NOT NULL REFERENCES repositories (repo_id) ON DELETE CASCADE,
    set_id      TEXT,
    kind        TEXT NOT NULL CHECK (kind IN
                  ('close_duplicates', 'add_label', 'remove_label', 'not_duplicate')),
    params      JSONB NOT NULL,
    steps       JSONB NOT NULL,
    actor       TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'planned'
                  CHECK (status IN ('planned', 'applying', 'done', 'failed')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    applied_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX action_plans_repo ON action_plans (repo_id, created_at DESC);

-- One row per thing done (or refused) on GitHub's side or recorded locally on behalf of a
-- maintainer: who, when, what, and GitHub's answer. A plan step is recorded once.
CREATE TABLE action_log (
    action_id      BIGSERIAL PRIMARY KEY,
    repo_id        BIGINT NOT NULL REFERENCES repositories (repo_id) ON DELETE CASCADE,
    plan_id        TEXT,
    step           INTEGER,
    set_id         TEXT,
    number         BIGINT,
    kind           TEXT NOT NULL,
    actor          TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('done', 'skipped', 'refused', 'failed')),
    detail         TEXT NOT NULL,
    github_status  INTEGER,
    github_answer  JSONB,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX action_log_repo ON action_log (repo_id, action_id DESC);
CREATE UNIQUE INDEX action_log_plan_step ON action_log (plan_id, step) WHERE plan_id IS NOT NULL;

-- The digest issue of each repository (edited in place) and when the digest last ran.
CREATE TABLE digest_state (
    repo_id      BIGINT PRIMARY KEY REFERENCES repositories (repo_id) ON DELETE CASCADE,
    issue_number BIGINT,
    last_run_at  TIMESTAMPTZ,
    last_period  TEXT,
    body_sha     TEXT
);

-- Outgoing webhook deliveries, retried with backoff by their own jobs.
CREATE TABLE outbound_deliveries (
    delivery_id  TEXT PRIMARY KEY,
    repo_id      BIGINT NOT NULL REFERENCES repositories (repo_id) ON DELETE CASCADE,
    event        TEXT NOT NULL,
    payload      JSONB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_status  INTEGER,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ
);

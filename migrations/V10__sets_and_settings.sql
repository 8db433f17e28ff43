-- Stable duplicate-set ids and per-repository settings.

-- The sets last computed for each repository under its default view (open PRs, the review
-- threshold), with the members each had. A recomputed set keeps the id of the known set whose
-- members it mostly still holds (src/triage/set_ids.rs), so links, verdicts and digests keep
-- pointing at it; a set that no longer exists stays here inactive, so its id can come back.
CREATE TABLE duplicate_sets (
    repo_id       BIGINT NOT NULL REFERENCES repositories (repo_id) ON DELETE CASCADE,
    set_id        TEXT NOT NULL,
    members       BIGINT[] NOT NULL,
    tier          TEXT NOT NULL,
    max_score     DOUBLE PRECISION NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repo_id, set_id)
);
CREATE INDEX duplicate_sets_recent ON duplicate_sets (repo_id, active, updated_at DESC);

-- What the last refresh of a repository's sets saw (see store::sets::watermark).
CREATE TABLE set_refreshes (
    repo_id      BIGINT PRIMARY KEY REFERENCES repositories (repo_id) ON DELETE CASCADE,
    watermark    TEXT NOT NULL,
    refreshed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The watermark reads the newest finished analysis of a repository.
CREATE INDEX analysis_runs_finished ON analysis_runs (repo_id, finished_at);

-- `.github/clawtriage.toml` of each repository as last read from GitHub: the text, whether it
-- is valid, its problems with line numbers, and the validated settings (null unless valid).
CREATE TABLE repo_settings (
    repo_id    BIGINT PRIMARY KEY REFERENCES repositories (repo_id) ON DELETE CASCADE,
    status     TEXT NOT NULL CHECK (status IN ('absent', 'valid', 'invalid', 'unreadable')),
    git_ref    TEXT,
    blob_sha   TEXT,
    text       TEXT,
    settings   JSONB,
    errors     JSONB NOT NULL DEFAULT '[]'::jsonb,
    fetched_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Engine configurations that differ from the appliance's (per-repository overrides), each with
-- its own config_version, which derived rows carry. Numbered from 1,000,000 so they never meet
-- the versions of hand-written configuration files.
CREATE SEQUENCE triage_config_version_seq AS INTEGER START 1000000;
CREATE TABLE triage_configs (
    config_version INTEGER PRIMARY KEY DEFAULT nextval('triage_config_version_seq'),
    digest         TEXT NOT NULL UNIQUE,
    config         JSONB NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

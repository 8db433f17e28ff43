-- Core tables of the appliance. Every row derived from a PR head carries the versions of the
-- signature format, the scoring algorithm and the triage config it was computed with, so a
-- version bump makes old rows visibly stale instead of silently wrong.

CREATE TABLE repositories (
    repo_id         BIGSERIAL PRIMARY KEY,
    owner           TEXT NOT NULL,
    name            TEXT NOT NULL,
    default_branch  TEXT NOT NULL DEFAULT 'main',
    installation_id BIGINT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_scan_at    TIMESTAMPTZ
);
-- GitHub names are case-insensitive.
CREATE UNIQUE INDEX repositories_name_key ON repositories (lower(owner), lower(name));

CREATE TABLE pull_requests (
    repo_id         BIGINT NOT NULL REFERENCES repositories (repo_id) ON DELETE CASCADE,
    number          BIGINT NOT NULL,
    title           TEXT NOT NULL DEFAULT '',
    body            TEXT NOT NULL DEFAULT '',
    author          TEXT NOT NULL DEFAULT '',
    html_url        TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    draft           BOOLEAN NOT NULL DEFAULT FALSE,
    head_sha        TEXT NOT NULL,
    head_ref        TEXT NOT NULL DEFAULT '',
    base_ref        TEXT NOT NULL DEFAULT '',
    base_sha        TEXT NOT NULL DEFAULT '',
    -- CI and review state, when known, for choosing which PR to keep.
    ci_state        TEXT,
    approvals       INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    closed_at       TIMESTAMPTZ,
    merged_at       TIMESTAMPTZ,
    first_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repo_id, number)
);
CREATE INDEX pull_requests_state ON pull_requests (repo_id, state, updated_at DESC, number DESC);

-- One row per file change of a head, with the channel the engine put it in.
CREATE TABLE pr_files (
    repo_id           BIGINT NOT NULL,
    number            BIGINT NOT NULL,
    head_sha          TEXT NOT NULL,
    path              TEXT NOT NULL,
    previous_path     TEXT,
    status            TEXT NOT NULL,
    additions         INTEGER NOT NULL DEFAULT 0,
    deletions         INTEGER NOT NULL DEFAULT 0,
    channel           TEXT NOT NULL CHECK (channel IN ('production', 'tests', 'docs', 'meta')),
    is_binary         BOOLEAN NOT NULL DEFAULT FALSE,
    truncated         BOOLEAN NOT NULL DEFAULT FALSE,
    signature_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    PRIMARY KEY (repo_id, number, head_sha, path),
    FOREIGN KEY (repo_id, number) REFERENCES pull_requests (repo_id, number) ON DELETE CASCADE
);

-- Everything the engine derived from a head for matching.
CREATE TABLE pr_signatures (
    repo_id           BIGINT NOT NULL,
    number            BIGINT NOT NULL,
    head_sha          TEXT NOT NULL,
    signature_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    signature         JSONB NOT NULL,
    channel_sizes     JSONB NOT NULL DEFAULT '{}'::jsonb,
    is_bot            BOOLEAN NOT NULL DEFAULT FALSE,
    -- Copied out of the signature for set building (byte-identical copies, sizes).
    canonical_hash    TEXT,
    production_lines  INTEGER NOT NULL DEFAULT 0,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repo_id, number, head_sha, signature_version, config_version),
    FOREIGN KEY (repo_id, number) REFERENCES pull_requests (repo_id, number) ON DELETE CASCADE
);

-- Inverted index: which current heads carry which signature key (LSH band, path, symbol, ...).
CREATE TABLE index_keys (
    repo_id           BIGINT NOT NULL,
    key               TEXT NOT NULL,
    number            BIGINT NOT NULL,
    head_sha          TEXT NOT NULL,
    signature_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    PRIMARY KEY (repo_id, signature_version, config_version, key, number),
    FOREIGN KEY (repo_id, number) REFERENCES pull_requests (repo_id, number) ON DELETE CASCADE
);
CREATE INDEX index_keys_by_pr ON index_keys (repo_id, number);

-- One analysis of one head with one set of versions.
CREATE TABLE analysis_runs (
    analysis_id       BIGSERIAL PRIMARY KEY,
    repo_id           BIGINT NOT NULL,
    number            BIGINT NOT NULL,
    head_sha          TEXT NOT NULL,
    signature_version INTEGER NOT NULL,
    algorithm_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    source            TEXT,
    degraded          JSONB NOT NULL DEFAULT '[]'::jsonb,
    candidates        INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ,
    UNIQUE (repo_id, number, head_sha, signature_version, algorithm_version, config_version),
    FOREIGN KEY (repo_id, number) REFERENCES pull_requests (repo_id, number) ON DELETE CASCADE
);

-- A scored, categorised, evidenced pair of heads. Both directions are stored.
CREATE TABLE candidate_edges (
    repo_id           BIGINT NOT NULL,
    number            BIGINT NOT NULL,
    head_sha          TEXT NOT NULL,
    other_number      BIGINT NOT NULL,
    other_head_sha    TEXT NOT NULL,
    category          TEXT NOT NULL CHECK (category IN
                        ('SAME_CHANGE', 'SAME_FEATURE', 'COMPETING_IMPLEMENTATION', 'RELATED', 'NOT_RELATED')),
    final_score       DOUBLE PRECISION NOT NULL,
    scores            JSONB NOT NULL DEFAULT '{}'::jsonb,
    evidence          JSONB NOT NULL DEFAULT '{}'::jsonb,
    signature_version INTEGER NOT NULL,
    algorithm_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repo_id, number, head_sha, other_number, other_head_sha),
    CHECK (number <> other_number),
    FOREIGN KEY (repo_id, number) REFERENCES pull_requests (repo_id, number) ON DELETE CASCADE
);
CREATE INDEX candidate_edges_score ON candidate_edges (repo_id, final_score DESC);
CREATE INDEX candidate_edges_other ON candidate_edges (repo_id, other_number);

-- One public-pr-scan job. Counters are derived from scan_prs so that at-least-once delivery can
-- never double-count.
CREATE TABLE scan_jobs (
    job_id               TEXT PRIMARY KEY,
    repo_id              BIGINT REFERENCES repositories (repo_id) ON DELETE CASCADE,
    owner                TEXT NOT NULL,
    repo                 TEXT NOT NULL,
    snapshot             TEXT NOT NULL,
    trigger              TEXT NOT NULL DEFAULT 'ops',
    actor                TEXT,
    max_open_prs         INTEGER,
    state                TEXT NOT NULL DEFAULT 'queued'
                           CHECK (state IN ('queued', 'running', 'done', 'failed')),
    listing_done         BOOLEAN NOT NULL DEFAULT FALSE,
    api_calls            INTEGER NOT NULL DEFAULT 0,
    rate_limit_remaining INTEGER,
    rate_limit_reset_at  TIMESTAMPTZ,
    auth                 TEXT,
    notes                JSONB NOT NULL DEFAULT '[]'::jsonb,
    error                TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at           TIMESTAMPTZ,
    finished_at          TIMESTAMPTZ
);
CREATE INDEX scan_jobs_recent ON scan_jobs (created_at DESC);

CREATE TABLE scan_prs (
    job_id    TEXT NOT NULL REFERENCES scan_jobs (job_id) ON DELETE CASCADE,
    number    BIGINT NOT NULL,
    head_sha  TEXT NOT NULL,
    outcome   TEXT NOT NULL DEFAULT 'pending'
                CHECK (outcome IN ('pending', 'analyzed', 'unchanged', 'failed')),
    source    TEXT,
    PRIMARY KEY (job_id, number)
);
CREATE INDEX scan_prs_pending ON scan_prs (number, head_sha) WHERE outcome = 'pending';

-- Conditional-request cache: the last ETag and body of each GitHub URL.
CREATE TABLE http_cache (
    url        TEXT PRIMARY KEY,
    etag       TEXT NOT NULL,
    body       BYTEA NOT NULL,
    link       TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    action      TEXT,
    repo_full   TEXT,
    outcome     TEXT NOT NULL DEFAULT 'accepted',
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A maintainer's verdict on a pair or a set.
CREATE TABLE feedback (
    feedback_id  BIGSERIAL PRIMARY KEY,
    repo_id      BIGINT NOT NULL REFERENCES repositories (repo_id) ON DELETE CASCADE,
    target       TEXT NOT NULL CHECK (target IN ('pair', 'set')),
    a_number     BIGINT,
    b_number     BIGINT,
    set_id       TEXT,
    -- The members of a set verdict, as shown when it was given.
    members      BIGINT[],
    verdict      TEXT NOT NULL CHECK (verdict IN
                   ('duplicate', 'not_duplicate', 'competing', 'related', 'base_is')),
    base_number  BIGINT,
    actor        TEXT NOT NULL DEFAULT 'anonymous',
    note         TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (a_number IS NULL OR b_number IS NULL OR a_number < b_number)
);
CREATE INDEX feedback_pair ON feedback (repo_id, a_number, b_number);

-- GitHub App mode: the Check Run posted for each analysed head, and the opt-in label and comment
-- posted at most once per pair of PRs.

-- One Check Run per PR head: created once, then updated (PATCH) when the head is re-analysed or a
-- later PR links to it.
CREATE TABLE check_runs (
    repo_id       BIGINT NOT NULL,
    number        BIGINT NOT NULL,
    head_sha      TEXT NOT NULL,
    check_run_id  BIGINT NOT NULL,
    title         TEXT NOT NULL DEFAULT '',
    conclusion    TEXT NOT NULL DEFAULT 'neutral',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repo_id, number, head_sha),
    FOREIGN KEY (repo_id, number) REFERENCES pull_requests (repo_id, number) ON DELETE CASCADE
);

-- Label or comment posted for a pair (a_number < b_number) on PR `target_number`. A row is
-- claimed before the post and removed again if the post fails, so each is posted at most once.
CREATE TABLE pair_notices (
    repo_id       BIGINT NOT NULL REFERENCES repositories (repo_id) ON DELETE CASCADE,
    a_number      BIGINT NOT NULL,
    b_number      BIGINT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('label', 'comment')),
    target_number BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (repo_id, a_number, b_number, kind),
    CHECK (a_number < b_number)
);

-- Repositories by installation (installation events touch all of an installation's repos).
CREATE INDEX repositories_installation ON repositories (installation_id)
    WHERE installation_id IS NOT NULL;

-- Webhook deliveries by age (redelivery is possible for 3 days; old rows can be pruned).
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

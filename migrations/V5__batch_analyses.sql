-- Analyses run in batches (issue 13).
--
-- Signatures are stored in a compact binary encoding (postcard) instead of JSONB: a batch loads
-- the signatures of thousands of candidates in one query, and decoding JSONB twice (to a JSON
-- value, then to the Rust type) was most of an analysis' time after the SQL. Rows written by
-- older builds cannot be converted in SQL; the signature format version was bumped with this
-- change, so those rows are stale anyway and the next scan analyses every head again.
DELETE FROM pr_signatures;
ALTER TABLE pr_signatures DROP COLUMN signature;
ALTER TABLE pr_signatures ADD COLUMN signature BYTEA NOT NULL;

-- Which process analysed a head (`{kind}-{host}-{pid}-{random}`), so a run over several
-- processes can show how the work was split.
ALTER TABLE analysis_runs ADD COLUMN worker TEXT;

-- Index keys become 64-bit hashes of the key strings (computed by the appliance): an integer
-- B-tree is smaller and compares faster than text under a UTF-8 collation, and a batch writes and
-- looks up tens of thousands of keys at once. The head is dropped (a PR's index rows always belong
-- to its current head; the analysis replaces them under the PR's row lock), and so is the foreign
-- key: checking it cost one lookup per inserted row. Rows of a deleted PR are removed by a
-- trigger instead. Every row in both tables belongs to the old signature version, so nothing is
-- carried over.
DROP TABLE index_keys;
DROP TABLE key_counts;

CREATE TABLE index_keys (
    repo_id           BIGINT NOT NULL,
    signature_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    key               BIGINT NOT NULL,
    number            BIGINT NOT NULL,
    PRIMARY KEY (repo_id, signature_version, config_version, key, number)
);
CREATE INDEX index_keys_by_pr ON index_keys (repo_id, number);

CREATE TABLE key_counts (
    repo_id           BIGINT NOT NULL,
    signature_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    key               BIGINT NOT NULL,
    n                 INTEGER NOT NULL,
    PRIMARY KEY (repo_id, signature_version, config_version, key)
);

-- The counting functions of V3 work on the new tables unchanged (same column names).
CREATE TRIGGER index_keys_added AFTER INSERT ON index_keys
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION key_counts_added();
CREATE TRIGGER index_keys_removed AFTER DELETE ON index_keys
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION key_counts_removed();
CREATE TRIGGER index_keys_no_update BEFORE UPDATE ON index_keys
    FOR EACH STATEMENT EXECUTE FUNCTION index_keys_no_update();

CREATE FUNCTION index_keys_of_deleted_prs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM index_keys k USING gone g WHERE k.repo_id = g.repo_id AND k.number = g.number;
    RETURN NULL;
END
$$;
CREATE TRIGGER pull_requests_deleted AFTER DELETE ON pull_requests
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION index_keys_of_deleted_prs();

-- Scoring discounts a feature only once at least three current heads carry it (rarer ones all
-- weigh the same), and few keys are that common (about 3 % of a 5,000-PR repository's). A batch
-- reads those keys' counts through this small index, once, instead of probing a count per feature
-- of every candidate.
CREATE INDEX key_counts_common ON key_counts (repo_id, signature_version, config_version)
    INCLUDE (key, n) WHERE n >= 3;

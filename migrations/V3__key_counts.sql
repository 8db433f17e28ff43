-- How many current heads carry each index key (its document frequency), kept exact by triggers
-- on index_keys. Candidate lookup and scoring read one row per key here instead of counting a
-- posting list that grows with the repository (counting was most of an analysis' time).
CREATE TABLE key_counts (
    repo_id           BIGINT NOT NULL,
    signature_version INTEGER NOT NULL,
    config_version    INTEGER NOT NULL,
    key               TEXT NOT NULL,
    n                 INTEGER NOT NULL,
    PRIMARY KEY (repo_id, signature_version, config_version, key)
);

-- One statement per change, shaped so that every key is one primary-key probe whatever the
-- planner knows of the transition table (INSERT ... ON CONFLICT goes through the key's index),
-- and rows are locked in key order, so concurrent statements wait for each other instead of
-- deadlocking. Readers skip keys whose count is 0; retention removes those rows.
CREATE FUNCTION key_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO key_counts AS k (repo_id, signature_version, config_version, key, n)
    SELECT a.repo_id, a.signature_version, a.config_version, a.key, count(*)
    FROM added a
    GROUP BY a.repo_id, a.signature_version, a.config_version, a.key
    ORDER BY a.repo_id, a.signature_version, a.config_version, a.key
    ON CONFLICT (repo_id, signature_version, config_version, key)
    DO UPDATE SET n = k.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE FUNCTION key_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO key_counts AS k (repo_id, signature_version, config_version, key, n)
    SELECT r.repo_id, r.signature_version, r.config_version, r.key, -count(*)
    FROM removed r
    GROUP BY r.repo_id, r.signature_version, r.config_version, r.key
    ORDER BY r.repo_id, r.signature_version, r.config_version, r.key
    ON CONFLICT (repo_id, signature_version, config_version, key)
    DO UPDATE SET n = k.n + EXCLUDED.n;
    RETURN NULL;
END
$$;

CREATE TRIGGER index_keys_added AFTER INSERT ON index_keys
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION key_counts_added();
CREATE TRIGGER index_keys_removed AFTER DELETE ON index_keys
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION key_counts_removed();

-- Index rows are only ever inserted and deleted; an update would bypass the counts.
CREATE FUNCTION index_keys_no_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'index_keys rows are inserted and deleted, never updated (key_counts)';
END
$$;
CREATE TRIGGER index_keys_no_update BEFORE UPDATE ON index_keys
    FOR EACH STATEMENT EXECUTE FUNCTION index_keys_no_update();

INSERT INTO key_counts (repo_id, signature_version, config_version, key, n)
SELECT repo_id, signature_version, config_version, key, count(*)
FROM index_keys GROUP BY repo_id, signature_version, config_version, key;

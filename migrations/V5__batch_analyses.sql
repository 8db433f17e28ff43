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

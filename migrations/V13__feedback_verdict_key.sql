-- Every verdict carries a key that survives `clawtriage feedback export` and `import`: a restore
-- inserts only the keys it does not have, so importing the same backup twice changes nothing.
ALTER TABLE feedback ADD COLUMN verdict_key TEXT NOT NULL DEFAULT gen_random_uuid()::text;
CREATE UNIQUE INDEX feedback_verdict_key ON feedback (verdict_key);

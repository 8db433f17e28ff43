-- Search and filters: title words and changed paths through trigram indexes (pg_trgm ships
-- with Debian's postgresql-15 and is a trusted extension, so the database owner may create it),
-- labels as GitHub lists them, authors and base branches by value.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE pull_requests ADD COLUMN labels TEXT[] NOT NULL DEFAULT '{}';

-- Label names compare case-insensitively, as on GitHub.
CREATE FUNCTION ct_lower_labels(labels TEXT[]) RETURNS TEXT[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT COALESCE(array_agg(lower(l)), '{}') FROM unnest(labels) AS l $$;

CREATE INDEX pull_requests_title_trgm ON pull_requests USING gin (title gin_trgm_ops);
CREATE INDEX pull_requests_author ON pull_requests (repo_id, lower(author));
CREATE INDEX pull_requests_base_ref ON pull_requests (repo_id, base_ref);
CREATE INDEX pull_requests_labels ON pull_requests USING gin (ct_lower_labels(labels));
CREATE INDEX pull_requests_updated ON pull_requests (repo_id, updated_at DESC, number DESC);
CREATE INDEX pr_files_path_trgm ON pr_files USING gin (path gin_trgm_ops);

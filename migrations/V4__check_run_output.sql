-- What a head's check run last showed (SHA-256 of title, summary and link), so that a post
-- whose content did not change is not written to GitHub again.
ALTER TABLE check_runs ADD COLUMN output_sha TEXT;

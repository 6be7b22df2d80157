-- Separation of duties (issue 13): a promotion records the exact policy it was last evaluated
-- against (env, version and checksum), so its status and audit trail show which rules applied.
ALTER TABLE promotions ADD COLUMN IF NOT EXISTS policy_checksum text;

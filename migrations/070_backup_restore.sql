-- Backup / restore bookkeeping (issue 9). Backups themselves live in their backup directory
-- (manifest.json + backup.json), so `stella backup list` works even after the database is lost;
-- these tables record what ran here.

-- Backups started from this locker (informational; the directory is authoritative).
CREATE TABLE backup_runs (
  id text PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT '*',
  type text NOT NULL DEFAULT 'evidence-locker',
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running','succeeded','failed')),
  location text NOT NULL,
  actor text NOT NULL,
  workflow_id text,
  summary jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

-- Restores and point-in-time restores. Inserted into the (possibly brand new) database being
-- restored into; progress mirrors the workflow's progress query.
CREATE TABLE restore_runs (
  id text PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT '*',
  backup_id text,
  to_anchor text,
  target text,
  actor text NOT NULL,
  workflow_id text,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running','succeeded','failed')),
  phase text NOT NULL DEFAULT 'prepare',
  progress jsonb NOT NULL DEFAULT '{}'::jsonb,
  result jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

-- One row per index batch applied, written in the same transaction as the batch's rows:
-- a retried batch (worker crash after commit, before the result was recorded) is skipped.
CREATE TABLE restore_batches (
  restore_id text NOT NULL,
  tenant_id text NOT NULL DEFAULT '*',
  tbl text NOT NULL,
  batch_no int NOT NULL,
  rows int NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (restore_id, tbl, batch_no)
);

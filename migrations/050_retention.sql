-- Retention, legal holds, tiering and purge bookkeeping (issue 7). Every table carries tenant_id.

-- Versioned retention declarations (schemas/replay-retention.schema.json), one series per
-- (tenant, bundle_type); bundle_type is an evidence kind or '*' (every kind without its own).
CREATE TABLE retention_policies (
  tenant_id text NOT NULL,
  bundle_type text NOT NULL,
  version int NOT NULL,
  retention_policy_id text NOT NULL,
  retention_days int NOT NULL CHECK (retention_days > 0),
  legal_hold boolean NOT NULL DEFAULT false,
  purge_after timestamptz,
  checksum text NOT NULL,
  declaration jsonb NOT NULL,
  -- The DSSE envelope the declaration arrived in (null when unsigned) and the key that signed it.
  envelope jsonb,
  signed_by text,
  declared_at timestamptz NOT NULL,
  applied_by text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, bundle_type, version)
);
CREATE INDEX retention_policies_id ON retention_policies (tenant_id, retention_policy_id);

-- Legal holds: while released_at is null, matching items are never purged or archive-deleted.
-- scope: items (scope_values = evidence ids) | artifact (subject digests) | tenant | bundle_type (kinds).
CREATE TABLE legal_holds (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  scope text NOT NULL CHECK (scope IN ('items','artifact','tenant','bundle_type')),
  scope_values text[] NOT NULL DEFAULT '{}',
  reason text NOT NULL,
  incident_ticket text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  released_by text,
  released_at timestamptz,
  release_reason text
);
CREATE INDEX legal_holds_active ON legal_holds (tenant_id, scope) WHERE released_at IS NULL;
CREATE INDEX legal_holds_values ON legal_holds USING gin (scope_values);

-- One row per retention workflow run (purge, dry-run, tier move, archive delete). Counters are
-- updated in the same transaction as the work, so a resumed run reports exact totals.
CREATE TABLE retention_runs (
  id text PRIMARY KEY,
  tenant_id text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('purge','tier-move','archive-delete')),
  dry_run boolean NOT NULL DEFAULT false,
  aggressive boolean NOT NULL DEFAULT false,
  actor text NOT NULL,
  reason text,
  -- Expiry is judged against this instant for the whole run (retries see the same cut-off).
  as_of timestamptz NOT NULL DEFAULT now(),
  -- Artifact digests of open promotions at run start (their evidence is protected).
  protected_artifacts text[] NOT NULL DEFAULT '{}',
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running','succeeded','failed')),
  items int NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  bytes_freed bigint NOT NULL DEFAULT 0,
  skipped_held int NOT NULL DEFAULT 0,
  skipped_promotion int NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX retention_runs_latest ON retention_runs (tenant_id, started_at DESC);

-- What a run did (or, for a dry run, would do) per item. blob_done marks the blob step
-- (delete or hot->cold copy) finished, so a crash between index change and blob step resumes.
CREATE TABLE retention_run_items (
  run_id text NOT NULL REFERENCES retention_runs (id),
  tenant_id text NOT NULL,
  item_id text NOT NULL,
  kind text NOT NULL,
  size_bytes bigint NOT NULL,
  tier text NOT NULL,
  policy_id text NOT NULL,
  reason text NOT NULL,
  blob_shared boolean NOT NULL DEFAULT false,
  blob_done boolean NOT NULL DEFAULT false,
  done_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, item_id)
);
CREATE INDEX retention_run_items_pending ON retention_run_items (run_id) WHERE NOT blob_done;

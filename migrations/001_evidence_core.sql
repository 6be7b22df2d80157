-- Evidence Locker core index. Every record carries tenant_id.
CREATE TABLE tenants (
  id text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id) VALUES ('default');

-- One row per (tenant, content digest). state: present | corrupted | purged | quarantined.
CREATE TABLE evidence_items (
  tenant_id text NOT NULL DEFAULT 'default',
  id text NOT NULL CHECK (id ~ '^sha256:[0-9a-f]{64}$'),
  media_type text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('sbom','scan-report','vex','attestation','replay-bundle','log','other')),
  predicate_type text,
  size_bytes bigint NOT NULL,
  producer jsonb NOT NULL DEFAULT '{}'::jsonb,
  labels jsonb NOT NULL DEFAULT '{}'::jsonb,
  storage_key text,
  tier text NOT NULL DEFAULT 'hot',
  state text NOT NULL DEFAULT 'present',
  state_reason text,
  state_changed_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX evidence_items_created ON evidence_items (tenant_id, created_at);
CREATE INDEX evidence_items_kind ON evidence_items (tenant_id, kind);
CREATE INDEX evidence_items_id ON evidence_items (id);

CREATE TABLE evidence_subjects (
  tenant_id text NOT NULL,
  item_id text NOT NULL,
  artifact_digest text NOT NULL,
  PRIMARY KEY (tenant_id, item_id, artifact_digest),
  FOREIGN KEY (tenant_id, item_id) REFERENCES evidence_items (tenant_id, id)
);
CREATE INDEX evidence_subjects_artifact ON evidence_subjects (tenant_id, artifact_digest);

-- Graph edges: child derived from / attests parent (e.g. scan-report -> sbom, attestation -> sbom).
CREATE TABLE evidence_edges (
  tenant_id text NOT NULL,
  child_id text NOT NULL,
  parent_id text NOT NULL,
  relation text NOT NULL DEFAULT 'derived-from',
  PRIMARY KEY (tenant_id, child_id, parent_id, relation)
);
CREATE INDEX evidence_edges_parent ON evidence_edges (tenant_id, parent_id);

CREATE TABLE verify_runs (
  id text PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT 'default',
  mode text NOT NULL,
  status text NOT NULL DEFAULT 'running',
  workflow_id text,
  sample_rate double precision,
  to_anchor text,
  total int NOT NULL DEFAULT 0,
  checked int NOT NULL DEFAULT 0,
  ok int NOT NULL DEFAULT 0,
  failed int NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

-- result: ok | hash-mismatch | missing-blob | unindexed-blob | size-mismatch
CREATE TABLE verify_results (
  run_id text NOT NULL REFERENCES verify_runs (id),
  tenant_id text NOT NULL DEFAULT 'default',
  item_id text NOT NULL,
  result text NOT NULL,
  detail text,
  checked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, item_id)
);

-- Every destructive or state-changing action. Append-only by convention and by trigger.
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT 'default',
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  target text,
  reason text,
  details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_target ON audit_log (tenant_id, target);
CREATE FUNCTION audit_log_immutable() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();

-- Timeline events (e.g. replay.hold.created) consumed by operators and integrations.
CREATE TABLE timeline_events (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT 'default',
  at timestamptz NOT NULL DEFAULT now(),
  type text NOT NULL,
  subject text,
  payload jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX timeline_events_type ON timeline_events (tenant_id, type, at);

-- Key/value settings (scanner config etc.), per tenant.
CREATE TABLE settings (
  tenant_id text NOT NULL DEFAULT 'default',
  key text NOT NULL,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key)
);

-- One row per recorded scan (replay manifest). Bundles live in the blob store's replay/
-- namespace and are mirrored into the Evidence Locker as replay-bundle items.
CREATE TABLE replay_runs (
  tenant_id text NOT NULL DEFAULT 'default',
  scan_id text NOT NULL,
  artifact_digest text NOT NULL,
  manifest_digest text NOT NULL,
  envelope_digest text NOT NULL,
  input_digest text NOT NULL,
  output_digest text NOT NULL,
  input_size bigint NOT NULL,
  output_size bigint NOT NULL,
  verdict text NOT NULL,
  scanner_version text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_verified_at timestamptz,
  last_result text,
  last_codes jsonb NOT NULL DEFAULT '[]'::jsonb,
  last_explain jsonb,
  PRIMARY KEY (tenant_id, scan_id)
);
CREATE INDEX replay_runs_latest ON replay_runs (tenant_id, created_at DESC);

-- Every verification of a replay manifest (nightly, on demand, or synced from an air-gapped site).
CREATE TABLE replay_verifications (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL DEFAULT 'default',
  scan_id text NOT NULL,
  source text NOT NULL,
  result text NOT NULL,
  codes jsonb NOT NULL DEFAULT '[]'::jsonb,
  explain jsonb,
  verified_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replay_verifications_scan ON replay_verifications (tenant_id, scan_id, verified_at DESC);

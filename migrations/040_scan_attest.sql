-- Scan-then-attest (issue 4): image catalogue, versioned advisory feeds, replay-ready scan
-- runs, signing failures and auto-scan events. Every table carries tenant_id.

-- Local image catalogue. `path` is on the worker's machine (the worker reads the image from it).
-- image_ref mirrors name so generic lookups (promotion gates) find the reference by that name.
CREATE TABLE scan_images (
  tenant_id text NOT NULL,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
  path text NOT NULL,
  digest text NOT NULL CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
  format text,
  image_ref text GENERATED ALWAYS AS (name) STORED,
  registered_by text,
  registered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);
CREATE INDEX scan_images_digest ON scan_images (tenant_id, digest);

-- Advisory feed versions. The snapshot (canonical JSON array of OSV records, whose sha256 is
-- `digest`) lives in the blob store under the `feeds` prefix, so a replay can pin it.
CREATE TABLE advisory_feeds (
  tenant_id text NOT NULL,
  version int NOT NULL,
  digest text NOT NULL CHECK (digest ~ '^sha256:[0-9a-f]{64}$'),
  record_count int NOT NULL,
  ecosystems jsonb NOT NULL DEFAULT '[]'::jsonb,
  size_bytes bigint NOT NULL,
  source text,
  imported_by text,
  imported_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, version),
  UNIQUE (tenant_id, digest)
);

-- One row per scanThenAttest run: everything needed to replay it (image digest and path,
-- feed version + snapshot digest, scanner version, scan time) and what it produced.
CREATE TABLE scan_runs (
  tenant_id text NOT NULL,
  scan_id text NOT NULL,
  workflow_id text NOT NULL,
  artifact_digest text NOT NULL CHECK (artifact_digest ~ '^sha256:[0-9a-f]{64}$'),
  image_ref text,
  image_path text,
  image_format text,
  trigger text NOT NULL DEFAULT 'manual',
  requested_by text NOT NULL,
  sbom_only boolean NOT NULL DEFAULT false,
  force boolean NOT NULL DEFAULT false,
  feed_version int,
  feed_digest text,
  scanner_name text NOT NULL,
  scanner_version text NOT NULL,
  scan_time timestamptz NOT NULL,
  sbom_id text,
  report_id text,
  attestation_ids jsonb NOT NULL DEFAULT '[]'::jsonb,
  counts jsonb,
  components int,
  warnings jsonb NOT NULL DEFAULT '[]'::jsonb,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running','completed','failed','reused')),
  reused_from text,
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (tenant_id, scan_id)
);
CREATE INDEX scan_runs_artifact ON scan_runs (tenant_id, artifact_digest, started_at DESC);

-- Written whenever an attestation could not be signed; `stella attest status` shows recent ones.
CREATE TABLE signing_failures (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  kid text,
  predicate_type text,
  subject text,
  scan_id text,
  error text NOT NULL
);
CREATE INDEX signing_failures_at ON signing_failures (tenant_id, at DESC);

-- Registry push (and other trigger) events: started a scan, queued, or ignored with a reason.
CREATE TABLE scan_events (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  trigger text NOT NULL,
  repository text,
  tag text,
  artifact_digest text,
  image text,
  status text NOT NULL CHECK (status IN ('started','queued','ignored','failed')),
  reason text,
  workflow_id text,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scan_events_artifact ON scan_events (tenant_id, artifact_digest, received_at DESC);

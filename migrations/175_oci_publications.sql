-- What stella pushed to which registry repository for an artifact (issue 14, item 3): one row per
-- evidence item per manifest it went out in. The referrers path writes one artifact manifest per
-- item; the cosign tag scheme (`sha256-<hex>.att`) appends layers, so an item is recorded with the
-- manifest digest the tag pointed to after its push.
CREATE TABLE oci_publications (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  artifact_digest text NOT NULL CHECK (artifact_digest ~ '^sha256:[0-9a-f]{64}$'),
  repository text NOT NULL,
  method text NOT NULL CHECK (method IN ('referrers', 'cosign-tag')),
  evidence_id text NOT NULL,
  artifact_type text NOT NULL,
  manifest_digest text NOT NULL CHECK (manifest_digest ~ '^sha256:[0-9a-f]{64}$'),
  tag text,
  actor text NOT NULL,
  pushed_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, repository, method, evidence_id, manifest_digest)
);
CREATE INDEX oci_publications_artifact ON oci_publications (tenant_id, artifact_digest, pushed_at DESC);

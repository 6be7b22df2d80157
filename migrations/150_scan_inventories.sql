-- One inventory per image digest and scanner (name incl. engine, version): what one read of the
-- image's layers found (packages with their layer, unidentified files, distro, layer stats).
-- SBOM, advisory matching and attestation are built from it without reading the image again.
CREATE TABLE scan_inventories (
  tenant_id text NOT NULL,
  artifact_digest text NOT NULL CHECK (artifact_digest ~ '^sha256:[0-9a-f]{64}$'),
  scanner_name text NOT NULL,
  scanner_version text NOT NULL,
  inventory jsonb NOT NULL,
  packages int NOT NULL,
  unidentified int NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, artifact_digest, scanner_name, scanner_version)
);

-- Evidence provenance (issue 13): how each evidence item was made, decided at ingest.
--   signed             a DSSE envelope whose signature verified at ingest against a known key
--                      (RootPack or a key a promotion policy names); signer = that key id
--   produced-by-stella made by a stella workflow (scan-then-attest); signer = stella's key id
--                      for the attestations it signed, null for the raw scanner outputs
--   uploaded           unsigned bytes (or bytes nobody verified): never satisfies a gate that
--                      names signers
ALTER TABLE evidence_items
  ADD COLUMN provenance text NOT NULL DEFAULT 'uploaded' CHECK (provenance IN ('signed','produced-by-stella','uploaded')),
  ADD COLUMN signer text;

-- Backfill from what ingest recorded before this migration: attestations stella signed carry
-- producer.type 'stella-attestor' and the signing key in labels (from a scan run when labelled
-- with its scan id; without one it was `attest create` over whatever was stored, a claim signed
-- by stella's key but not stella's own scan output); imported attestations were
-- verified against the RootPack by `attest import`; the scanner's SBOMs and reports carry
-- producer.type 'scanner'. Everything else stays 'uploaded' (nothing verified it).
UPDATE evidence_items SET provenance = CASE WHEN labels ? 'stella.scan-id' THEN 'produced-by-stella' ELSE 'signed' END,
    signer = labels->>'stella.signer'
  WHERE producer->>'type' = 'stella-attestor' AND labels ? 'stella.signer';
UPDATE evidence_items SET provenance = 'signed', signer = labels->>'stella.signer'
  WHERE producer->>'type' = 'import' AND kind = 'attestation' AND labels ? 'stella.signer';
UPDATE evidence_items SET provenance = 'produced-by-stella'
  WHERE producer->>'type' = 'scanner' AND kind IN ('sbom','scan-report');

CREATE INDEX evidence_items_signer ON evidence_items (tenant_id, signer) WHERE signer IS NOT NULL;

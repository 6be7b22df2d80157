/** What promotion gates read from the evidence tables (owned by evidence; used by src/core/promotion). */
import type { Db } from '../../../db/pool';

/** A present evidence item about an artifact that a promotion gate may look at. */
export interface GateCandidate {
  id: string;
  kind: 'sbom' | 'scan-report' | 'attestation' | 'vex';
  mediaType: string;
  predicateType: string | null;
  createdAt: Date;
  size: number;
  /** How it was made (recorded at ingest): signed, produced-by-stella or uploaded; and by which key. */
  provenance: 'signed' | 'produced-by-stella' | 'uploaded';
  signer: string | null;
  /** Where its blob lives (hot or cold), so the gate reads it without looking the item up again. */
  tier?: string;
}

/** Present SBOMs, scan reports, attestations and VEX naming `artifact` as a subject, newest first. */
export async function gateCandidates(db: Db, tenant: string, artifact: string): Promise<GateCandidate[]> {
  const r = await db.query(
    `SELECT i.id, i.kind, i.media_type, i.predicate_type, i.created_at, i.size_bytes, i.provenance, i.signer, i.tier FROM evidence_items i
     JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id
     WHERE i.tenant_id=$1 AND s.artifact_digest=$2 AND i.state='present' AND i.kind IN ('sbom','scan-report','attestation','vex')
     ORDER BY i.created_at DESC, i.id`,
    [tenant, artifact],
  );
  return r.rows.map((x) => ({
    id: x.id,
    kind: x.kind,
    mediaType: x.media_type,
    predicateType: x.predicate_type,
    createdAt: new Date(x.created_at),
    size: Number(x.size_bytes),
    provenance: x.provenance,
    signer: x.signer,
    tier: x.tier,
  }));
}

/**
 * Reads and edge writes the scan and attest features need on evidence tables (owned by the
 * evidence feature; this file is the scan feature's, per the ownership rule).
 */
import type { Queryable } from '../state';

/** A present attestation of exactly this statement (label `stella.statement`) about the artifact. */
export async function findAttestationByStatement(
  q: Queryable,
  tenant: string,
  a: { artifact: string; predicateType: string; statementDigest: string },
): Promise<{ id: string; signer: string } | null> {
  const r = await q.query<{ id: string; labels: Record<string, string> | null }>(
    `SELECT i.id, i.labels FROM evidence_items i JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id
     WHERE i.tenant_id=$1 AND s.artifact_digest=$2 AND i.kind='attestation' AND i.predicate_type=$3 AND i.state='present' AND i.labels->>'stella.statement'=$4
     ORDER BY i.created_at LIMIT 1`,
    [tenant, a.artifact, a.predicateType, a.statementDigest],
  );
  const row = r.rows[0];
  return row ? { id: row.id, signer: row.labels?.['stella.signer'] ?? '' } : null;
}

/** Adds child → parent edges that are missing (idempotent). */
export async function ensureEdges(q: Queryable, tenant: string, childId: string, parents: readonly { id: string; relation: string }[]): Promise<void> {
  for (const p of parents)
    await q.query('INSERT INTO evidence_edges (tenant_id, child_id, parent_id, relation) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING', [
      tenant,
      childId,
      p.id,
      p.relation,
    ]);
}

/** The newest present item of a kind about an artifact. */
export async function latestPresentItem(q: Queryable, tenant: string, artifact: string, kind: string): Promise<string | null> {
  const r = await q.query<{ id: string }>(
    `SELECT i.id FROM evidence_items i JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id
     WHERE i.tenant_id=$1 AND s.artifact_digest=$2 AND i.kind=$3 AND i.state='present' ORDER BY i.created_at DESC LIMIT 1`,
    [tenant, artifact, kind],
  );
  return r.rows[0]?.id ?? null;
}

/** How many of `ids` are present. */
export async function countPresent(q: Queryable, tenant: string, ids: readonly string[]): Promise<number> {
  if (!ids.length) return 0;
  const r = await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM evidence_items WHERE tenant_id=$1 AND id = ANY($2) AND state='present'`, [
    tenant,
    ids,
  ]);
  return r.rows[0]?.n ?? 0;
}

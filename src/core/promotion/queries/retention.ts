/** What retention reads from the promotions table (owned by promotion; used by src/core/retention). */
import type { Queryable } from '../../evidence/state';

/** Promotion states in which the promotion still needs its evidence. */
export const OPEN_PROMOTION_STATES = ['evaluating', 'waiting-evidence', 'waiting-approval'] as const;

/** Artifact digests of a tenant's open promotions, sorted ([] when the promotion feature's table is absent). */
export async function openPromotionArtifacts(q: Queryable, tenant: string): Promise<string[]> {
  const t = await q.query(`SELECT to_regclass('promotions') IS NOT NULL AS ok`);
  if (!t.rows[0].ok) return [];
  const r = await q.query(`SELECT DISTINCT artifact_digest FROM promotions WHERE tenant_id=$1 AND state = ANY ($2::text[]) ORDER BY 1`, [
    tenant,
    [...OPEN_PROMOTION_STATES],
  ]);
  return r.rows.map((x) => x.artifact_digest as string);
}

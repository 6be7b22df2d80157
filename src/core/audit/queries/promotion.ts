/** What the promotion feature reads from the audit log (owned by audit). */
import type { Db } from '../../../db/pool';

/**
 * Who requested a promotion through the stella API (its `promotion.requested` entry), or null
 * when it was started some other way (e.g. straight through Temporal, with a made-up requester).
 */
export async function promotionRequester(db: Db, tenant: string, artifactDigest: string, promotionId: string): Promise<string | null> {
  const r = await db.query<{ actor: string }>(
    `SELECT actor FROM audit_log WHERE tenant_id=$1 AND target=$2 AND action='promotion.requested' AND details->>'promotionId'=$3 ORDER BY id LIMIT 1`,
    [tenant, artifactDigest, promotionId],
  );
  return r.rows[0]?.actor ?? null;
}

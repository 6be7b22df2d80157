/** What evidence ingest reads from the promotion policies (owned by promotion; used by src/core/evidence/signed.ts). */
import type { KeyInfo } from '../../../crypto/dsse';
import type { Db } from '../../../db/pool';
import { pemKeysOf, policySchema } from '../policy';

/**
 * The PEM public keys named as signers by the tenant's current policies (every environment, and
 * the tenant-wide '*'), by key id: a signed upload by one of them verifies at ingest.
 */
export async function policySignerKeys(db: Db, tenant: string): Promise<Map<string, KeyInfo>> {
  const r = await db.query<{ document: unknown }>(
    `SELECT document FROM (SELECT DISTINCT ON (env) document FROM promotion_policies WHERE tenant_id=$1 ORDER BY env, version DESC) latest
      WHERE document::text LIKE '%"pem"%'`,
    [tenant],
  );
  const policies = r.rows.map((x) => policySchema.safeParse(x.document)).flatMap((p) => (p.success ? [p.data] : []));
  return pemKeysOf(policies);
}

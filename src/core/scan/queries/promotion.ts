/** What promotion start reads from the scan catalogue (owned by scan; used by src/core/promotion). */
import type { Db } from '../../../db/pool';

/** Whether `name` is a registered catalogue name for this tenant (catalogue names win over registry references). */
export async function isCatalogueName(db: Db, tenant: string, name: string): Promise<boolean> {
  const r = await db.query('SELECT 1 FROM scan_images WHERE tenant_id=$1 AND name=$2 LIMIT 1', [tenant, name]);
  return r.rows.length > 0;
}

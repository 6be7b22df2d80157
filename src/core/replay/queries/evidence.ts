/** What the evidence locker's integrity tools read about replay copies (owned by replay; used by src/core/evidence/locker). */
import type { Db } from '../../../db/pool';
import type { AppContext } from '../../context';
import type { BlobStore } from '../../../blob';

/** The store's replay area: the copies `stella verify` and the nightly replay read. */
export function replayArea(ctx: Pick<AppContext, 'blobs'>): BlobStore {
  return ctx.blobs.primary.withPrefix('replay');
}

/**
 * One page (digest order, digests > `after`) of the distinct blobs replay runs reference
 * (manifest, envelope, input and output bundles), within `tenant` ('*': every tenant).
 */
export async function replayCopyPage(db: Db, tenant: string, after: string, limit: number): Promise<string[]> {
  const r = await db.query(
    `SELECT DISTINCT d FROM (
       SELECT unnest(ARRAY[manifest_digest, envelope_digest, input_digest, output_digest]) AS d FROM replay_runs WHERE ($1 = '*' OR tenant_id = $1)
     ) x WHERE d > $2 ORDER BY d LIMIT $3`,
    [tenant, after, limit],
  );
  return r.rows.map((x) => x.d as string);
}

/** Whether any replay run (within `tenant`, '*': any) references `digest`. */
export async function isReplayCopy(db: Db, tenant: string, digest: string): Promise<boolean> {
  const r = await db.query(
    `SELECT 1 FROM replay_runs WHERE ($1 = '*' OR tenant_id = $1) AND $2 IN (manifest_digest, envelope_digest, input_digest, output_digest) LIMIT 1`,
    [tenant, digest],
  );
  return !!r.rowCount;
}

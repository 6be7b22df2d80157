/**
 * Corruption lifecycle: detected (a verify failure) → acknowledged (reason and who, audited) →
 * repaired (recover, index refresh, retry-store) or tombstoned. Acknowledged failures stay
 * listed in verify-report and evidence status but no longer fail later runs or the alert.
 */
import type { AppContext } from '../../context';
import type { Db, DbClient } from '../../../db/pool';
import { audit } from '../../audit';
import { badInput, notFound } from '../../../lib/errors';
import { transitionItems, validateDigest } from '../index';
import { REPLAY_COPY_PREFIX } from './verify';
import { type Viewer, visibleTenants } from '../viewer';

export type Resolution = 'repaired' | 'tombstoned';

export interface Acknowledgement {
  id: string;
  reason: string;
  actor: string;
  acknowledgedAt: string;
  resolution: Resolution | null;
  resolvedAt: string | null;
}

export function reasonOf(r: string): string {
  const s = (r ?? '').trim();
  if (!s) throw badInput('--reason is required (e.g. "hash-mismatch")');
  if (s.length > 500) throw badInput('reason is longer than 500 characters');
  return s;
}

/** What verify-report names: an evidence id / blob digest, or a replay copy `replay/<digest>`. */
export function validateFailureId(id: string): string {
  const digest = id.startsWith(REPLAY_COPY_PREFIX) ? id.slice(REPLAY_COPY_PREFIX.length) : id;
  validateDigest(digest, 'id');
  return id;
}

/** Records (or refreshes) an open acknowledgement; audited. */
export async function recordAck(db: Db | DbClient, tenant: string, id: string, reason: string, actor: string): Promise<void> {
  await db.query(
    `INSERT INTO integrity_acks (tenant_id, item_id, reason, actor) VALUES ($1,$2,$3,$4)
     ON CONFLICT (tenant_id, item_id) DO UPDATE SET reason = EXCLUDED.reason, actor = EXCLUDED.actor, acknowledged_at = now(), resolution = NULL, resolved_at = NULL`,
    [tenant, id, reason, actor],
  );
  await audit(db, { tenant, actor, action: 'evidence.integrity.acknowledged', target: id, reason });
}

/**
 * `stella evidence acknowledge`: an operator has seen this failure and accepts it for now. Only a
 * failure a verification run visible to the tenant recorded can be acknowledged.
 */
export async function acknowledge(ctx: AppContext, viewer: Viewer, id: string, reason: string, actor: string): Promise<Acknowledgement> {
  validateFailureId(id);
  const why = reasonOf(reason);
  // Only failures of runs the viewer may see: its tenant's, and whole-locker runs for administrators.
  const seen = await ctx.db.query(
    `SELECT 1 FROM verify_results r JOIN verify_runs v ON v.id = r.run_id WHERE r.item_id = $1 AND r.result <> 'ok' AND v.tenant_id = ANY($2) LIMIT 1`,
    [id, visibleTenants(viewer)],
  );
  if (!seen.rowCount) throw notFound(`no verification failure names ${id}; run stella evidence verify --mode full first`);
  await recordAck(ctx.db, viewer.tenant, id, why, actor);
  return (await listAcks(ctx, viewer.tenant, { id }))[0]!;
}

/** Settles open acknowledgements of `ids` (repaired or tombstoned). */
export async function resolveAcks(db: Db | DbClient, tenant: string, ids: readonly string[], resolution: Resolution): Promise<void> {
  if (!ids.length) return;
  await db.query(`UPDATE integrity_acks SET resolution = $3, resolved_at = now() WHERE tenant_id = $1 AND item_id = ANY($2) AND resolved_at IS NULL`, [
    tenant,
    ids,
    resolution,
  ]);
}

/**
 * `stella evidence tombstone`: an unrecoverable item is given up. Its index row becomes purged
 * with the reason (the log leaf stays; the damaged bytes stay in the store for forensics), so
 * later runs no longer check it. Audited; its acknowledgement is settled as tombstoned.
 */
export async function tombstone(ctx: AppContext, tenant: string, id: string, reason: string, actor: string) {
  validateDigest(id, 'evidence id');
  const why = reasonOf(reason);
  const before = await ctx.evidence.get(tenant, id);
  if (before.state === 'purged') throw badInput(`evidence ${id} is already purged; nothing to tombstone`);
  await transitionItems(ctx.db, tenant, [id], { from: ['present', 'corrupted', 'quarantined'], to: 'purged', reason: `tombstoned: ${why}` });
  await recordAck(ctx.db, tenant, id, why, actor);
  await resolveAcks(ctx.db, tenant, [id], 'tombstoned');
  await audit(ctx.db, { tenant, actor, action: 'evidence.tombstoned', target: id, reason: why, details: { previousState: before.state } });
  return { id, previousState: before.state, state: 'purged', reason: why };
}

/** Acknowledgements of a tenant, open first (with `open`, only those), newest first. */
export async function listAcks(ctx: AppContext, tenant: string, q: { id?: string; open?: boolean; limit?: number } = {}): Promise<Acknowledgement[]> {
  const r = await ctx.db.query(
    `SELECT * FROM integrity_acks WHERE tenant_id=$1 AND ($2::text IS NULL OR item_id=$2) AND (NOT $3 OR resolved_at IS NULL)
     ORDER BY (resolved_at IS NULL) DESC, acknowledged_at DESC, item_id LIMIT $4`,
    [tenant, q.id ?? null, !!q.open, q.limit ?? 100],
  );
  return r.rows.map((x) => ({
    id: x.item_id,
    reason: x.reason,
    actor: x.actor,
    acknowledgedAt: new Date(x.acknowledged_at).toISOString(),
    resolution: x.resolution ?? null,
    resolvedAt: x.resolved_at ? new Date(x.resolved_at).toISOString() : null,
  }));
}

import type { AppContext } from '../../context';
import { latestAnchor } from '../../anchoring/store';
import { summaryOf } from './verify';
import { capacity, withTimeout } from './storage';
import { listAcks } from './lifecycle';

async function storeState(store: AppContext['blobs']['primary'] | undefined) {
  if (!store) return null;
  const t = performance.now();
  try {
    await withTimeout(() => store.health(), 5000, 'health check');
    return {
      kind: store.kind,
      location: store.location,
      healthy: true,
      latencyMs: Math.round((performance.now() - t) * 100) / 100,
      error: null as string | null,
    };
  } catch (e) {
    return { kind: store.kind, location: store.location, healthy: false, latencyMs: null, error: (e as Error).message };
  }
}

/** The newest anchor (the anchoring feature's), without its JWS; `{ none: true }` before the first one. */
async function anchorSummary(ctx: AppContext): Promise<Record<string, unknown>> {
  const a = await latestAnchor(ctx);
  return a ? { ...a } : { none: true };
}

/** Runbook pre-flight `stella evidence status`: what is stored, where, and whether it's healthy. */
export async function lockerStatus(ctx: AppContext, tenant: string) {
  const [byKind, byState, totals, log, verify, primary, replica, anchor, indexBytes, cap] = await Promise.all([
    ctx.db.query(
      `SELECT kind, count(*)::int AS n, coalesce(sum(size_bytes),0)::bigint AS b FROM evidence_items WHERE tenant_id=$1 AND state <> 'purged' GROUP BY kind ORDER BY kind`,
      [tenant],
    ),
    ctx.db.query(`SELECT state, count(*)::int AS n FROM evidence_items WHERE tenant_id=$1 GROUP BY state ORDER BY state`, [tenant]),
    ctx.db.query(
      `SELECT count(*)::int AS n, coalesce(sum(size_bytes),0)::bigint AS b, count(DISTINCT s.artifact_digest)::int AS artifacts FROM evidence_items i LEFT JOIN LATERAL (SELECT artifact_digest FROM evidence_subjects s WHERE s.tenant_id=i.tenant_id AND s.item_id=i.id LIMIT 1) s ON true WHERE i.tenant_id=$1 AND i.state <> 'purged'`,
      [tenant],
    ),
    ctx.db.query(
      `SELECT (SELECT size FROM log_state) AS size, (SELECT count(*) FROM evidence_log WHERE tenant_id=$1) AS mine, (SELECT max(appended_at) FROM evidence_log) AS last`,
      [tenant],
    ),
    ctx.db.query(`SELECT * FROM verify_runs WHERE tenant_id IN ($1, '*') ORDER BY started_at DESC LIMIT 1`, [tenant]),
    storeState(ctx.blobs.primary),
    storeState(ctx.blobs.replica),
    anchorSummary(ctx).catch((e) => ({ error: (e as Error).message })),
    ctx.db.query(`SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))),0)::bigint AS n FROM unnest($1::text[]) t`, [
      ['evidence_items', 'evidence_subjects', 'evidence_edges', 'evidence_log'],
    ]),
    capacity(ctx.blobs.primary),
  ]);
  const states = Object.fromEntries(byState.rows.map((r) => [r.state, r.n]));
  const latestVerify = verify.rowCount ? summaryOf(verify.rows[0]) : null;
  const acks = await listAcks(ctx, tenant, { open: true, limit: 1000 });
  // Corrupted items an operator acknowledged are listed, not counted against health.
  const unacknowledgedCorrupted = await ctx.db.query(
    `SELECT count(*)::int AS n FROM evidence_items i WHERE i.tenant_id=$1 AND i.state='corrupted'
       AND NOT EXISTS (SELECT 1 FROM integrity_acks a WHERE a.tenant_id=i.tenant_id AND a.item_id=i.id AND a.resolved_at IS NULL)`,
    [tenant],
  );
  const healthy = !!primary?.healthy && (replica ? replica.healthy : true) && !unacknowledgedCorrupted.rows[0].n && latestVerify?.status !== 'failed';
  return {
    tenant,
    healthy,
    items: totals.rows[0].n as number,
    bytes: Number(totals.rows[0].b),
    byKind: byKind.rows.map((r) => ({ kind: r.kind as string, items: r.n as number, bytes: Number(r.b) })),
    byState: states as Record<string, number>,
    store: { ...primary!, capacity: cap },
    replica,
    index: { bytes: Number(indexBytes.rows[0].n) },
    log: {
      size: Number(log.rows[0].size),
      tenantEntries: Number(log.rows[0].mine),
      lastAppendedAt: log.rows[0].last ? new Date(log.rows[0].last).toISOString() : null,
    },
    latestVerify,
    latestAnchor: anchor,
    acknowledged: { open: acks.length, items: acks.slice(0, 20).map(({ id, reason, actor, acknowledgedAt }) => ({ id, reason, actor, acknowledgedAt })) },
  };
}

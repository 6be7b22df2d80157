import type { AppContext } from '../context';
import { summaryOf } from '../verify';
import { capacity, withTimeout } from './storage';

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

/** The anchors table belongs to the Merkle feature; read it only if it exists, whatever its columns. */
async function latestAnchor(ctx: AppContext): Promise<Record<string, unknown> | null> {
  const reg = await ctx.db.query(`SELECT to_regclass('public.anchors') AS t`);
  if (!reg.rows[0].t) return null;
  const cols = await ctx.db.query(`SELECT column_name FROM information_schema.columns WHERE table_schema='public' AND table_name='anchors'`);
  const names = new Set(cols.rows.map((c) => c.column_name as string));
  const order = ['created_at', 'anchored_at', 'at', 'seq', 'id'].find((c) => names.has(c));
  const r = await ctx.db.query(`SELECT to_jsonb(a) AS j FROM anchors a ${order ? `ORDER BY a.${order} DESC` : ''} LIMIT 1`);
  if (!r.rowCount) return { none: true };
  // Keep the summary small: drop large blobs such as the JWS itself.
  const j = r.rows[0].j as Record<string, unknown>;
  return Object.fromEntries(Object.entries(j).filter(([, v]) => typeof v !== 'string' || v.length <= 200));
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
    latestAnchor(ctx).catch((e) => ({ error: (e as Error).message })),
    ctx.db.query(`SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))),0)::bigint AS n FROM unnest($1::text[]) t`, [
      ['evidence_items', 'evidence_subjects', 'evidence_edges', 'evidence_log'],
    ]),
    capacity(ctx.blobs.primary),
  ]);
  const states = Object.fromEntries(byState.rows.map((r) => [r.state, r.n]));
  const latestVerify = verify.rowCount ? summaryOf(verify.rows[0]) : null;
  const healthy = !!primary?.healthy && (replica ? replica.healthy : true) && !states.corrupted && latestVerify?.status !== 'failed';
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
  };
}

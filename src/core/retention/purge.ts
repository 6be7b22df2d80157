import type { Db } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import type { AppContext } from '../context';
import type { BlobStore } from '../../blob';
import { badInput, notFound } from '../../lib/errors';
import { getTiers, policyJoinSql } from './policy';
import { heldFilterSql } from './holds';

/**
 * Retention engine shared by the purge, tier-move and archive-delete runs.
 *
 * Purge of one batch = ONE SQL statement in one transaction: tombstone the index rows
 * (state 'purged'; the evidence_log Merkle leaf is never touched), record them in
 * retention_run_items (blob_done=false) and write one audit entry per item, then bump the
 * run's counters. The blobs are deleted afterwards and each row marked blob_done. A worker
 * crash anywhere therefore resumes exactly: an item is tombstoned and audited at most once
 * (its state is re-checked under the row lock), and pending blob deletions of the run are
 * finished first by the next attempt. Counts come from the database, never from memory.
 */

export const OPEN_PROMOTION_STATES = ['evaluating', 'waiting-evidence', 'waiting-approval'];
/** Aggressive mode: a scan report superseded by a newer one for all its subjects goes after this long. */
export const SUPERSEDED_SCAN_REPORT_DAYS = 7;

export type RunKind = 'purge' | 'tier-move' | 'archive-delete';

export interface RetentionRunInput {
  runId: string;
  tenant: string;
  kind: RunKind;
  dryRun?: boolean;
  aggressive?: boolean;
  actor: string;
  reason?: string | null;
  protectedArtifacts?: string[];
}

export interface RetentionRunSummary {
  runId: string;
  tenant: string;
  kind: RunKind;
  dryRun: boolean;
  aggressive: boolean;
  status: string;
  actor: string;
  reason: string | null;
  asOf: string;
  items: number;
  bytes: number;
  bytesFreed: number;
  skippedHeld: number;
  skippedPromotion: number;
  pendingBlobs: number;
  startedAt: string;
  finishedAt: string | null;
}

function summaryOf(r: Record<string, any>, pending = 0): RetentionRunSummary {
  return {
    runId: r.id,
    tenant: r.tenant_id,
    kind: r.kind,
    dryRun: r.dry_run,
    aggressive: r.aggressive,
    status: r.status,
    actor: r.actor,
    reason: r.reason,
    asOf: new Date(r.as_of).toISOString(),
    items: r.items,
    bytes: Number(r.bytes),
    bytesFreed: Number(r.bytes_freed),
    skippedHeld: r.skipped_held,
    skippedPromotion: r.skipped_promotion,
    pendingBlobs: pending,
    startedAt: new Date(r.started_at).toISOString(),
    finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
  };
}

export async function promotionsTableExists(db: Db): Promise<boolean> {
  const r = await db.query(`SELECT to_regclass('promotions') IS NOT NULL AS ok`);
  return r.rows[0].ok as boolean;
}

/** Artifact digests of open promotions recorded in the promotions table (when that feature is installed). */
export async function openPromotionArtifactsFromDb(db: Db, tenant: string): Promise<string[]> {
  if (!(await promotionsTableExists(db))) return [];
  const r = await db.query(`SELECT DISTINCT artifact_digest FROM promotions WHERE tenant_id=$1 AND state = ANY($2)`, [tenant, OPEN_PROMOTION_STATES]);
  return r.rows.map((x) => x.artifact_digest as string);
}

export async function startRun(ctx: AppContext, input: RetentionRunInput): Promise<RetentionRunSummary> {
  if (!input.runId) throw badInput('run id is required');
  await ctx.db.query(
    `INSERT INTO retention_runs (id, tenant_id, kind, dry_run, aggressive, actor, reason, protected_artifacts) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (id) DO NOTHING`,
    [
      input.runId,
      input.tenant,
      input.kind,
      !!input.dryRun,
      !!input.aggressive,
      input.actor,
      input.reason ?? null,
      [...new Set(input.protectedArtifacts ?? [])].sort(),
    ],
  );
  return getRun(ctx.db, input.runId);
}

export async function getRun(db: Db, runId: string, tenant?: string): Promise<RetentionRunSummary> {
  const r = await db.query(`SELECT * FROM retention_runs WHERE id=$1 ${tenant ? 'AND tenant_id=$2' : ''}`, tenant ? [runId, tenant] : [runId]);
  if (!r.rowCount) throw notFound(`retention run ${runId} not found`);
  const p = await db.query('SELECT count(*)::int AS n FROM retention_run_items WHERE run_id=$1 AND NOT blob_done', [runId]);
  return summaryOf(r.rows[0], p.rows[0].n);
}

export async function listRuns(db: Db, tenant: string, limit = 20): Promise<RetentionRunSummary[]> {
  const r = await db.query('SELECT * FROM retention_runs WHERE tenant_id=$1 ORDER BY started_at DESC LIMIT $2', [tenant, Math.min(Math.max(limit, 1), 500)]);
  return r.rows.map((x) => summaryOf(x));
}

export interface RunItem {
  id: string;
  kind: string;
  size: number;
  tier: string;
  policyId: string;
  reason: string;
  blobShared: boolean;
  blobDone: boolean;
}

export async function runItems(
  db: Db,
  runId: string,
  q: { tenant: string; limit?: number; after?: string | null },
): Promise<{ items: RunItem[]; next: string | null }> {
  const limit = Math.min(Math.max(q.limit ?? 1000, 1), 10_000);
  const r = await db.query(`SELECT * FROM retention_run_items WHERE run_id=$1 AND tenant_id=$2 AND item_id > $3 ORDER BY item_id LIMIT $4`, [
    runId,
    q.tenant,
    q.after ?? '',
    limit + 1,
  ]);
  const rows = r.rows.slice(0, limit);
  return {
    items: rows.map((x) => ({
      id: x.item_id,
      kind: x.kind,
      size: Number(x.size_bytes),
      tier: x.tier,
      policyId: x.policy_id,
      reason: x.reason,
      blobShared: x.blob_shared,
      blobDone: x.blob_done,
    })),
    next: r.rows.length > limit ? rows[rows.length - 1]!.item_id : null,
  };
}

interface RunRow {
  id: string;
  tenant_id: string;
  kind: RunKind;
  dry_run: boolean;
  aggressive: boolean;
  actor: string;
  reason: string | null;
  as_of: Date;
  protected_artifacts: string[];
}

async function runRow(db: Db, runId: string): Promise<RunRow> {
  const r = await db.query('SELECT * FROM retention_runs WHERE id=$1', [runId]);
  if (!r.rowCount) throw notFound(`retention run ${runId} not found`);
  return r.rows[0] as RunRow;
}

/**
 * The eligible-items query. Params: $1 tenant, $2 as_of, $3 default retention days (cold tier),
 * $4 hot days, $5 aggressive, $6 protected artifact digests, and $7 ids (ids mode only).
 * CTE `e` = items that would go, with flags `held` and `promo` (callers exclude those).
 */
function eligibleSql(mode: 'expire' | 'ids', aggressive: boolean, promotionsTable: boolean): string {
  const pol = policyJoinSql('$3');
  const promoLive = promotionsTable
    ? `OR EXISTS (SELECT 1 FROM promotions p JOIN evidence_subjects pps ON pps.tenant_id = p.tenant_id AND pps.artifact_digest = p.artifact_digest
         WHERE p.tenant_id = i.tenant_id AND pps.item_id = i.id AND p.state IN (${OPEN_PROMOTION_STATES.map((s) => `'${s}'`).join(',')}))`
    : '';
  // Superseded scan report: every subject has a newer, live scan report.
  const superseded = aggressive
    ? `(i.kind = 'scan-report' AND i.created_at < $2::timestamptz - make_interval(days => ${SUPERSEDED_SCAN_REPORT_DAYS})
        AND EXISTS (SELECT 1 FROM evidence_subjects s0 WHERE s0.tenant_id = i.tenant_id AND s0.item_id = i.id)
        AND NOT EXISTS (SELECT 1 FROM evidence_subjects s WHERE s.tenant_id = i.tenant_id AND s.item_id = i.id AND NOT EXISTS (
          SELECT 1 FROM evidence_subjects s2 JOIN evidence_items j ON j.tenant_id = s2.tenant_id AND j.id = s2.item_id
          WHERE s2.tenant_id = s.tenant_id AND s2.artifact_digest = s.artifact_digest AND j.kind = 'scan-report' AND j.state <> 'purged'
            AND (j.created_at, j.id) > (i.created_at, i.id))))`
    : 'false';
  const c = `c AS (
    SELECT i.id, i.kind, i.size_bytes, i.tier, i.created_at, ${pol.cols},
      ${heldFilterSql('i')} AS held,
      (EXISTS (SELECT 1 FROM evidence_subjects ps WHERE ps.tenant_id = i.tenant_id AND ps.item_id = i.id AND ps.artifact_digest = ANY ($6::text[])) ${promoLive}) AS promo,
      ${superseded} AS superseded
    FROM evidence_items i ${pol.join}
    WHERE i.tenant_id = $1 AND i.state IN ('present', 'corrupted') ${mode === 'ids' ? 'AND i.id = ANY ($7::text[])' : ''})`;
  const days = `CASE WHEN $5::boolean THEN least(c.retention_days, $4::int) ELSE c.retention_days END`;
  const e =
    mode === 'ids'
      ? // (the unused parameters are typed so PostgreSQL can prepare the statement)
        `e AS (SELECT c.*, 'archived' AS reason FROM c WHERE NOT c.policy_hold AND $2::timestamptz IS NOT NULL AND $4::int IS NOT NULL AND $5::boolean IS NOT NULL)`
      : `e AS (SELECT c.*,
           CASE WHEN c.created_at < $2::timestamptz - make_interval(days => c.retention_days) THEN 'expired: older than ' || c.retention_days || ' days (policy ' || c.policy_id || ')'
                WHEN c.superseded THEN 'aggressive: scan report superseded by a newer one'
                ELSE 'aggressive: older than hot retention of ' || $4::int || ' days (policy ' || c.policy_id || ')' END AS reason
         FROM c
         WHERE NOT c.policy_hold AND (c.purge_after IS NULL OR c.purge_after <= $2::timestamptz)
           AND (c.created_at < $2::timestamptz - make_interval(days => ${days}) OR c.superseded))`;
  return `WITH ${pol.cte}, ${c}, ${e}`;
}

async function eligibleParams(ctx: AppContext, run: RunRow, ids?: string[]) {
  const tiers = await getTiers(ctx.db, run.tenant_id);
  const params: unknown[] = [run.tenant_id, run.as_of, tiers.coldDays, tiers.hotDays, run.aggressive, run.protected_artifacts];
  if (ids) params.push(ids);
  return { params, promotionsTable: await promotionsTableExists(ctx.db) };
}

/** Counts of expired-but-protected items, stored on the run at its start. */
export async function countSkipped(ctx: AppContext, runId: string, ids?: string[]): Promise<{ held: number; promotion: number }> {
  const run = await runRow(ctx.db, runId);
  const { params, promotionsTable } = await eligibleParams(ctx, run, ids);
  const r = await ctx.db.query(
    `${eligibleSql(ids ? 'ids' : 'expire', run.aggressive, promotionsTable)}
     SELECT count(*) FILTER (WHERE held)::int AS held, count(*) FILTER (WHERE promo AND NOT held)::int AS promotion FROM e`,
    params,
  );
  await ctx.db.query('UPDATE retention_runs SET skipped_held=$2, skipped_promotion=$3 WHERE id=$1', [runId, r.rows[0].held, r.rows[0].promotion]);
  return r.rows[0];
}

const SHARED_SQL = (tierExpr: string, idExpr: string, tenantExpr: string) =>
  `EXISTS (SELECT 1 FROM evidence_items o WHERE o.id = ${idExpr} AND o.tenant_id <> ${tenantExpr} AND o.state <> 'purged' AND o.tier = ${tierExpr})`;

/** Dry run: records exactly what would go (and whether its blob would be freed); changes no evidence. */
export async function planRun(ctx: AppContext, runId: string): Promise<RetentionRunSummary> {
  const run = await runRow(ctx.db, runId);
  const { params, promotionsTable } = await eligibleParams(ctx, run);
  params.push(runId);
  await withTransaction(ctx.db, async (tx) => {
    await tx.query('DELETE FROM retention_run_items WHERE run_id=$1', [runId]); // a retried plan starts over
    const r = await tx.query(
      `${eligibleSql('expire', run.aggressive, promotionsTable)},
       ins AS (INSERT INTO retention_run_items (run_id, tenant_id, item_id, kind, size_bytes, tier, policy_id, reason, blob_shared, blob_done)
               SELECT $7, $1, e.id, e.kind, e.size_bytes, e.tier, e.policy_id, e.reason, ${SHARED_SQL('e.tier', 'e.id', '$1')}, true FROM e WHERE NOT e.held AND NOT e.promo
               RETURNING size_bytes, blob_shared)
       SELECT (SELECT count(*) FROM ins)::int AS items, (SELECT coalesce(sum(size_bytes), 0) FROM ins)::bigint AS bytes,
              (SELECT coalesce(sum(size_bytes) FILTER (WHERE NOT blob_shared), 0) FROM ins)::bigint AS freed,
              (SELECT count(*) FROM e WHERE held)::int AS held, (SELECT count(*) FROM e WHERE promo AND NOT held)::int AS promo`,
      params,
    );
    const x = r.rows[0];
    await tx.query(`UPDATE retention_runs SET items=$2, bytes=$3, bytes_freed=$4, skipped_held=$5, skipped_promotion=$6 WHERE id=$1`, [
      runId,
      x.items,
      x.bytes,
      x.freed,
      x.held,
      x.promo,
    ]);
  });
  return getRun(ctx.db, runId);
}

function storeFor(ctx: AppContext, tier: string): BlobStore {
  return tier === 'cold' ? ctx.blobs.primary.withPrefix('cold') : ctx.blobs.primary;
}

async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

/**
 * Finishes the blob step of every recorded-but-not-done row of a run: deletes the blob copy
 * in `tier` (purge: the item's tier; tier-move: the hot copy) unless another tenant's live
 * row still needs that copy. Idempotent.
 */
export async function finishPendingBlobs(ctx: AppContext, runId: string, onProgress: (n: number) => void = () => {}): Promise<number> {
  const run = await runRow(ctx.db, runId);
  let done = 0;
  for (;;) {
    const r = await ctx.db.query(
      `SELECT r.item_id, r.tier, ${SHARED_SQL('r.tier', 'r.item_id', 'r.tenant_id')} AS shared,
              EXISTS (SELECT 1 FROM evidence_items o WHERE o.id = r.item_id AND o.tenant_id <> r.tenant_id AND o.state <> 'purged') AS referenced
       FROM retention_run_items r WHERE r.run_id=$1 AND NOT r.blob_done ORDER BY r.item_id LIMIT 500`,
      [runId],
    );
    if (!r.rowCount) return done;
    await pool(r.rows, 8, async (row) => {
      if (!row.shared) await storeFor(ctx, row.tier).delete(row.item_id);
      // The replica mirrors hot ingests; it goes only with the last live reference.
      if (run.kind !== 'tier-move' && ctx.blobs.replica && !row.referenced) await ctx.blobs.replica.delete(row.item_id);
    });
    await withTransaction(ctx.db, async (tx) => {
      const u = await tx.query(
        `UPDATE retention_run_items r SET blob_done = true, blob_shared = v.shared FROM unnest($2::text[], $3::boolean[]) AS v(id, shared)
         WHERE r.run_id=$1 AND r.item_id = v.id AND NOT r.blob_done RETURNING r.size_bytes, r.blob_shared`,
        [runId, r.rows.map((x) => x.item_id), r.rows.map((x) => x.shared)],
      );
      const freed = u.rows.filter((x) => !x.blob_shared).reduce((a, x) => a + Number(x.size_bytes), 0);
      await tx.query('UPDATE retention_runs SET bytes_freed = bytes_freed + $2 WHERE id=$1', [runId, freed]);
    });
    done += r.rowCount!;
    onProgress(done);
  }
}

/**
 * One purge batch (expired items, or the named ids for archive-delete). Returns how many
 * items this batch tombstoned; 0 means the run has nothing left.
 */
export async function purgeBatch(
  ctx: AppContext,
  runId: string,
  opts: { batchSize?: number; ids?: string[]; onProgress?: (n: number) => void } = {},
): Promise<{ purged: number; bytes: number }> {
  const onProgress = opts.onProgress ?? (() => {});
  await finishPendingBlobs(ctx, runId, onProgress);
  const run = await runRow(ctx.db, runId);
  if (run.dry_run) throw badInput(`run ${runId} is a dry run`);
  const { params, promotionsTable } = await eligibleParams(ctx, run, opts.ids);
  const n = params.length;
  params.push(Math.min(Math.max(opts.batchSize ?? 500, 1), 5000), runId, run.actor, run.reason);
  const why = `$${n + 4}::text`;
  const r = await withTransaction(ctx.db, async (tx) => {
    const x = await tx.query(
      `${eligibleSql(opts.ids ? 'ids' : 'expire', run.aggressive, promotionsTable)},
       pick AS (SELECT * FROM e WHERE NOT e.held AND NOT e.promo ORDER BY e.id LIMIT $${n + 1}),
       upd AS (UPDATE evidence_items t SET state = 'purged', state_reason = left('retention: ' || pick.reason, 500), state_changed_at = now()
               FROM pick WHERE t.tenant_id = $1 AND t.id = pick.id AND t.state IN ('present', 'corrupted') RETURNING t.id),
       ins AS (INSERT INTO retention_run_items (run_id, tenant_id, item_id, kind, size_bytes, tier, policy_id, reason)
               SELECT $${n + 2}, $1, pick.id, pick.kind, pick.size_bytes, pick.tier, pick.policy_id, pick.reason FROM pick JOIN upd ON upd.id = pick.id
               ON CONFLICT DO NOTHING RETURNING item_id, kind, size_bytes, tier, policy_id, reason),
       aud AS (INSERT INTO audit_log (tenant_id, actor, action, target, reason, details)
               SELECT $1, $${n + 3}, 'evidence.purged', ins.item_id, coalesce(${why} || ': ', '') || ins.reason,
                      jsonb_build_object('runId', $${n + 2}::text, 'digest', ins.item_id, 'policyId', ins.policy_id, 'kind', ins.kind, 'sizeBytes', ins.size_bytes,
                                         'tier', ins.tier, 'aggressive', $5::boolean, 'runKind', '${run.kind}', 'merkleLeafKept', true)
               FROM ins RETURNING 1)
       SELECT (SELECT count(*) FROM ins)::int AS n, (SELECT coalesce(sum(size_bytes), 0) FROM ins)::bigint AS bytes, (SELECT count(*) FROM aud)::int AS audited`,
      params,
    );
    const row = x.rows[0];
    await tx.query('UPDATE retention_runs SET items = items + $2, bytes = bytes + $3 WHERE id=$1', [runId, row.n, row.bytes]);
    return { purged: row.n as number, bytes: Number(row.bytes) };
  });
  await finishPendingBlobs(ctx, runId, onProgress);
  return r;
}

/** One hot->cold batch: copy + verify in cold, flip the tier (audited), then drop the hot copy. */
export async function tierMoveBatch(
  ctx: AppContext,
  runId: string,
  opts: { after?: string | null; batchSize?: number; onProgress?: (n: number) => void } = {},
): Promise<{ moved: number; bytes: number; failed: { id: string; error: string }[]; last: string | null }> {
  const onProgress = opts.onProgress ?? (() => {});
  await finishPendingBlobs(ctx, runId, onProgress);
  const run = await runRow(ctx.db, runId);
  const tiers = await getTiers(ctx.db, run.tenant_id);
  const cand = await ctx.db.query(
    `SELECT i.id, i.kind, i.size_bytes FROM evidence_items i WHERE i.tenant_id=$1 AND i.state='present' AND i.tier='hot'
       AND i.created_at < $2::timestamptz - make_interval(days => $3::int)
       AND i.id > $5
     ORDER BY i.id LIMIT $4`,
    [run.tenant_id, run.as_of, tiers.hotDays, Math.min(Math.max(opts.batchSize ?? 200, 1), 2000), opts.after ?? ''],
  );
  if (!cand.rowCount) return { moved: 0, bytes: 0, failed: [], last: null };
  const last = cand.rows[cand.rows.length - 1].id as string;
  const cold = storeFor(ctx, 'cold');
  const copied: string[] = [];
  const failed: { id: string; error: string }[] = [];
  let i = 0;
  await pool(cand.rows, 4, async (row) => {
    try {
      const have = await cold.hash(row.id);
      if (!have || have.actual !== row.id) {
        await cold.put(row.id, await ctx.blobs.primary.getBuffer(row.id));
        const check = await cold.hash(row.id);
        if (!check || check.actual !== row.id) throw new Error(`cold copy does not verify (${check?.actual ?? 'absent'})`);
      }
      copied.push(row.id);
    } catch (e) {
      failed.push({ id: row.id, error: (e as Error).message });
    }
    onProgress(++i);
  });
  const r = await withTransaction(ctx.db, async (tx) => {
    const x = await tx.query(
      `WITH upd AS (UPDATE evidence_items t SET tier = 'cold' WHERE t.tenant_id=$1 AND t.id = ANY ($2::text[]) AND t.tier='hot' AND t.state='present' RETURNING t.id, t.kind, t.size_bytes),
       ins AS (INSERT INTO retention_run_items (run_id, tenant_id, item_id, kind, size_bytes, tier, policy_id, reason)
               SELECT $3, $1, upd.id, upd.kind, upd.size_bytes, 'hot', 'tiers', 'older than hot retention of ' || $5::int || ' days' FROM upd
               ON CONFLICT DO NOTHING RETURNING item_id, kind, size_bytes),
       aud AS (INSERT INTO audit_log (tenant_id, actor, action, target, reason, details)
               SELECT $1, $4, 'evidence.tier.cold', ins.item_id, 'moved hot -> cold: older than ' || $5::int || ' days',
                      jsonb_build_object('runId', $3::text, 'digest', ins.item_id, 'kind', ins.kind, 'sizeBytes', ins.size_bytes, 'coldDays', $6::int)
               FROM ins RETURNING 1)
       SELECT (SELECT count(*) FROM ins)::int AS n, (SELECT coalesce(sum(size_bytes), 0) FROM ins)::bigint AS bytes, (SELECT count(*) FROM aud)::int AS a`,
      [run.tenant_id, copied, runId, run.actor, tiers.hotDays, tiers.coldDays],
    );
    await tx.query('UPDATE retention_runs SET items = items + $2, bytes = bytes + $3 WHERE id=$1', [runId, x.rows[0].n, x.rows[0].bytes]);
    return { moved: x.rows[0].n as number, bytes: Number(x.rows[0].bytes) };
  });
  await finishPendingBlobs(ctx, runId, onProgress);
  // Items that failed to copy are left hot and reported; the next run retries them.
  return { ...r, failed, last };
}

export async function finishRun(ctx: AppContext, runId: string, status: 'succeeded' | 'failed' = 'succeeded'): Promise<RetentionRunSummary> {
  await ctx.db.query(`UPDATE retention_runs SET status=$2, finished_at=coalesce(finished_at, now()) WHERE id=$1`, [runId, status]);
  return getRun(ctx.db, runId);
}

/** Tenants known to the locker (the daily schedule fans out over these). */
export async function knownTenants(db: Db): Promise<string[]> {
  const r = await db.query(`SELECT id FROM tenants UNION SELECT DISTINCT tenant_id FROM evidence_items ORDER BY 1`);
  return r.rows.map((x) => x.id as string);
}

/** Retention run records (retention_runs, retention_run_items): the durable state purge and tier-move runs resume from. */
import type { Db } from '../../db/pool';
import { withTransaction } from '../../db/pool';
import type { Queryable } from '../evidence/state';
import { badInput, notFound } from '../../lib/errors';

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

/** A run as the engine reads it. */
export interface RunRecord {
  id: string;
  tenant: string;
  kind: RunKind;
  dryRun: boolean;
  aggressive: boolean;
  actor: string;
  reason: string | null;
  /** The run's instant (microseconds since the epoch): ages are judged against it for the whole run. */
  asOfUs: number;
  protectedArtifacts: string[];
  /** Purge runs: where the expiry walk stands (gather.ts pageCursor); '' before the first batch. */
  purgeCursor: string;
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

/**
 * Creates the run row; a retried start (same id) keeps the first one, adding any protected
 * artifacts it did not have (the API records the row, with its tenant, before the workflow starts).
 */
export async function startRun(db: Db, input: RetentionRunInput): Promise<RetentionRunSummary> {
  if (!input.runId) throw badInput('run id is required');
  await db.query(
    `INSERT INTO retention_runs (id, tenant_id, kind, dry_run, aggressive, actor, reason, protected_artifacts) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
     ON CONFLICT (id) DO UPDATE SET protected_artifacts =
       ARRAY(SELECT DISTINCT x FROM unnest(retention_runs.protected_artifacts || EXCLUDED.protected_artifacts) AS x ORDER BY x)`,
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
  return getRun(db, input.runId);
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

export async function runRecord(q: Queryable, runId: string): Promise<RunRecord> {
  const r = await q.query(`SELECT *, (extract(epoch FROM as_of) * 1000000)::bigint AS as_of_us FROM retention_runs WHERE id=$1`, [runId]);
  if (!r.rowCount) throw notFound(`retention run ${runId} not found`);
  const x = r.rows[0];
  return {
    id: x.id,
    tenant: x.tenant_id,
    kind: x.kind,
    dryRun: x.dry_run,
    aggressive: x.aggressive,
    actor: x.actor,
    reason: x.reason,
    asOfUs: Number(x.as_of_us),
    protectedArtifacts: x.protected_artifacts ?? [],
    purgeCursor: x.purge_cursor ?? '',
  };
}

/** Moves a purge run's expiry cursor (in the transaction of the batch it covers). */
export async function setPurgeCursor(q: Queryable, runId: string, cursor: string): Promise<void> {
  await q.query('UPDATE retention_runs SET purge_cursor = $2 WHERE id = $1', [runId, cursor]);
}

export async function finishRun(db: Db, runId: string, status: 'succeeded' | 'failed' = 'succeeded'): Promise<RetentionRunSummary> {
  await db.query(`UPDATE retention_runs SET status=$2, finished_at=coalesce(finished_at, now()) WHERE id=$1`, [runId, status]);
  return getRun(db, runId);
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

/** One item a run acted on (or, in a dry run, would act on). */
export interface RunItemRecord {
  id: string;
  kind: string;
  sizeBytes: number;
  tier: string;
  policyId: string;
  reason: string;
  /** Dry runs only: whether another tenant still holds the blob (nothing would be freed). */
  blobShared?: boolean;
}

/**
 * Records items of a run; an item already recorded for the run is left alone. Returns the
 * newly recorded ones, so each is counted and audited once. `blobDone` true for dry runs (no blob step).
 */
export async function recordRunItems(
  q: Queryable,
  run: { id: string; tenant: string },
  items: readonly RunItemRecord[],
  blobDone = false,
): Promise<RunItemRecord[]> {
  if (!items.length) return [];
  const r = await q.query(
    `INSERT INTO retention_run_items (run_id, tenant_id, item_id, kind, size_bytes, tier, policy_id, reason, blob_shared, blob_done)
     SELECT $1, $2, x.id, x.kind, x.size, x.tier, x.policy, x.reason, x.shared, $10
       FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::boolean[]) AS x(id, kind, size, tier, policy, reason, shared)
     ON CONFLICT DO NOTHING RETURNING item_id`,
    [
      run.id,
      run.tenant,
      items.map((i) => i.id),
      items.map((i) => i.kind),
      items.map((i) => i.sizeBytes),
      items.map((i) => i.tier),
      items.map((i) => i.policyId),
      items.map((i) => i.reason),
      items.map((i) => i.blobShared ?? false),
      blobDone,
    ],
  );
  const fresh = new Set(r.rows.map((x) => x.item_id as string));
  return items.filter((i) => fresh.has(i.id));
}

/** Adds to a run's item and byte counters (in the transaction that recorded the items). */
export async function addRunCounts(q: Queryable, runId: string, items: number, bytes: number): Promise<void> {
  await q.query('UPDATE retention_runs SET items = items + $2, bytes = bytes + $3 WHERE id=$1', [runId, items, bytes]);
}

/** A retried dry-run plan starts over. */
export async function clearRunItems(q: Queryable, runId: string): Promise<void> {
  await q.query('DELETE FROM retention_run_items WHERE run_id=$1', [runId]);
}

export async function setRunCounts(
  q: Queryable,
  runId: string,
  c: { items?: number; bytes?: number; bytesFreed?: number; skippedHeld: number; skippedPromotion: number },
): Promise<void> {
  await q.query(
    `UPDATE retention_runs SET items = coalesce($2, items), bytes = coalesce($3, bytes), bytes_freed = coalesce($4, bytes_freed), skipped_held = $5, skipped_promotion = $6 WHERE id=$1`,
    [runId, c.items ?? null, c.bytes ?? null, c.bytesFreed ?? null, c.skippedHeld, c.skippedPromotion],
  );
}

/** Recorded items whose blob step is not done yet, in id order. */
export async function pendingBlobItems(q: Queryable, runId: string, limit: number): Promise<{ id: string; tier: string }[]> {
  const r = await q.query(`SELECT item_id, tier FROM retention_run_items WHERE run_id=$1 AND NOT blob_done ORDER BY item_id LIMIT $2`, [runId, limit]);
  return r.rows.map((x) => ({ id: x.item_id as string, tier: x.tier as string }));
}

/** Marks blob steps done (with whether the blob was kept for another tenant) and counts the bytes freed. */
export async function markBlobsDone(db: Db, runId: string, done: readonly { id: string; shared: boolean }[]): Promise<void> {
  await withTransaction(db, async (tx) => {
    const u = await tx.query(
      `UPDATE retention_run_items r SET blob_done = true, blob_shared = v.shared FROM unnest($2::text[], $3::boolean[]) AS v(id, shared)
       WHERE r.run_id=$1 AND r.item_id = v.id AND NOT r.blob_done RETURNING r.size_bytes, r.blob_shared`,
      [runId, done.map((x) => x.id), done.map((x) => x.shared)],
    );
    const freed = u.rows.filter((x) => !x.blob_shared).reduce((a, x) => a + Number(x.size_bytes), 0);
    await tx.query('UPDATE retention_runs SET bytes_freed = bytes_freed + $2 WHERE id=$1', [runId, freed]);
  });
}

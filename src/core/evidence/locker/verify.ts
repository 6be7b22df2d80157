import { createHash } from 'node:crypto';
import type { AppContext } from '../../context';
import { notFound } from '../../../lib/errors';
import { type Viewer, visibleTenants } from '../viewer';
import { mapLimit } from '../../../lib/concurrency';
import { FsBlobStore } from '../../../blob';
import { withTransaction } from '../../../db/pool';
import { replayArea, replayCopyPage } from '../../replay/queries/evidence';

export type VerifyMode = 'quick' | 'full';
export type VerifyResult =
  | 'ok'
  | 'hash-mismatch'
  | 'missing-blob'
  | 'unindexed-blob'
  | 'size-mismatch'
  /** A copy in the store's `replay/` area (what replay reads) that hashes otherwise or is absent. */
  | 'replay-copy-mismatch'
  | 'replay-copy-missing';

/** How verify-report names a copy in the replay area: `replay/<digest>`. */
export const REPLAY_COPY_PREFIX = 'replay/';

export interface VerifyRunInput {
  runId: string;
  tenant?: string | null;
  mode: VerifyMode;
  sampleRate: number;
  batchSize?: number;
  /** Only items in the Merkle log below this size (point-in-time verification to an anchor). */
  maxLogSize?: number | null;
  toAnchor?: string | null;
}

export interface BatchOutcome {
  nextAfter: string | null;
  checked: number;
  ok: number;
  failed: number;
  failures: { id: string; result: VerifyResult; detail: string }[];
}

/** Deterministic sample: the same run id picks the same items, so a retried batch checks the same set. */
export function inSample(runId: string, id: string, rate: number): boolean {
  if (rate >= 1) return true;
  const h = createHash('sha256').update(runId).update(id).digest();
  return h.readUInt32BE(0) / 0x1_0000_0000 < rate;
}

function scope(input: VerifyRunInput, params: unknown[]): string {
  const where = [`i.state <> 'purged'`];
  if (input.tenant) {
    params.push(input.tenant);
    where.push(`i.tenant_id = $${params.length}`);
  }
  if (input.maxLogSize != null) {
    params.push(input.maxLogSize);
    where.push(`EXISTS (SELECT 1 FROM evidence_log l WHERE l.item_id = i.id AND l.tenant_id = i.tenant_id AND l.seq < $${params.length})`);
  }
  return where.join(' AND ');
}

async function insertRun(ctx: AppContext, input: VerifyRunInput, workflowId: string, total: number): Promise<void> {
  await ctx.db.query(
    `INSERT INTO verify_runs (id, tenant_id, mode, workflow_id, sample_rate, to_anchor, total) VALUES ($1,$2,$3,$4,$5,$6,$7)
     ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total`,
    [input.runId, input.tenant ?? '*', input.mode, workflowId, input.mode === 'quick' ? input.sampleRate : 1, input.toAnchor ?? null, total],
  );
}

/**
 * Records an operator-started run (and its tenant) before its workflow starts, so the status
 * route can resolve the run id within the caller's tenant from the first moment.
 */
export async function createVerifyRun(ctx: AppContext, input: VerifyRunInput): Promise<void> {
  await insertRun(ctx, input, input.runId, 0);
}

/**
 * The index's planner statistics refreshed when autovacuum's own rule says they are stale (more
 * than 50 + 10 % of the rows changed since the last analyze), now rather than up to a minute later:
 * after a bulk ingest, stale statistics made every page of the run a sequential scan and sort of
 * the whole table instead of a walk of the id index (3 ms instead of 0.5 ms a page at 2000 items,
 * growing with the table).
 */
async function freshStatistics(ctx: AppContext): Promise<void> {
  const r = await ctx.db.query(
    `SELECT n_mod_since_analyze > 50 + 0.1 * greatest(n_live_tup, reltuples) AS stale
     FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = 'evidence_items'::regclass`,
  );
  if (!r.rows[0]?.stale) return;
  // Never worth waiting for: behind a manual VACUUM the run goes on with the old statistics.
  await withTransaction(ctx.db, async (tx) => {
    await tx.query(`SET LOCAL lock_timeout = '1s'`);
    await tx.query('ANALYZE evidence_items');
  }).catch(() => {});
}

export async function startVerifyRun(ctx: AppContext, input: VerifyRunInput, workflowId: string): Promise<{ total: number }> {
  await freshStatistics(ctx);
  const params: unknown[] = [];
  const where = scope(input, params);
  const r = await ctx.db.query(`SELECT count(DISTINCT i.id)::int AS n FROM evidence_items i WHERE ${where}`, params);
  const total = r.rows[0].n as number;
  await insertRun(ctx, input, workflowId, total);
  return { total };
}

/** The run `runId` if `viewer` may see it (its tenant's runs; whole-locker runs for admins), else NOT_FOUND. */
export async function verifyRunOf(ctx: AppContext, viewer: Viewer, runId: string): Promise<VerifyRunSummary> {
  const r = await ctx.db.query('SELECT * FROM verify_runs WHERE id=$1 AND tenant_id = ANY($2)', [runId, visibleTenants(viewer)]);
  if (!r.rowCount) throw notFound(`verify run ${runId} not found`);
  return summaryOf(r.rows[0]);
}

/**
 * Records one batch: its failures (each marked acknowledged when an operator has acknowledged
 * it), and its counts under its key (a retried or resumed batch replaces its own counts, never
 * adds them twice); the run's counters are the sums over its batches, so
 * checked = ok + failed + acknowledged whatever was retried. Acknowledged failures are listed but
 * do not fail the run. One statement (one round trip) per batch.
 */
async function record(
  ctx: AppContext,
  runId: string,
  batch: string,
  failures: BatchOutcome['failures'],
  checked: number,
  ok: number,
  /** LIKE pattern of batch keys this batch replaces (removed in the same statement). */
  replaces = '',
): Promise<number> {
  // An id listed twice (a blob name in two directories) is one result row; the last one wins.
  const byId = new Map(failures.map((f) => [f.id, f]));
  const r = await ctx.db.query(
    `WITH t AS (SELECT coalesce((SELECT tenant_id FROM verify_runs WHERE id = $1), '*') AS tenant),
     f AS (SELECT * FROM unnest($6::text[], $7::text[], $8::text[]) AS f(item_id, result, detail)),
     acked AS (
       SELECT DISTINCT a.item_id FROM integrity_acks a, t
       WHERE a.item_id IN (SELECT item_id FROM f) AND a.resolved_at IS NULL AND (t.tenant = '*' OR a.tenant_id = t.tenant)
     ), res AS (
       INSERT INTO verify_results (run_id, item_id, result, detail, acknowledged)
       SELECT $1, f.item_id, f.result, f.detail, f.item_id IN (SELECT item_id FROM acked) FROM f
       ON CONFLICT (run_id, item_id) DO UPDATE SET result = EXCLUDED.result, detail = EXCLUDED.detail, acknowledged = EXCLUDED.acknowledged
     ), b AS (
       INSERT INTO verify_batches (run_id, batch, checked, ok, failed, acknowledged)
       SELECT $1, $2, $3, $4, $5 - n, n FROM (SELECT count(*)::int AS n FROM acked) c
       ON CONFLICT (run_id, batch) DO UPDATE SET checked = EXCLUDED.checked, ok = EXCLUDED.ok, failed = EXCLUDED.failed, acknowledged = EXCLUDED.acknowledged
       RETURNING failed, acknowledged
     ), replaced AS (
       DELETE FROM verify_batches WHERE run_id = $1 AND batch LIKE $9
     ), others AS (
       SELECT coalesce(sum(checked), 0)::int AS checked, coalesce(sum(ok), 0)::int AS ok, coalesce(sum(failed), 0)::int AS failed,
              coalesce(sum(acknowledged), 0)::int AS acknowledged
       FROM verify_batches WHERE run_id = $1 AND batch <> $2 AND batch NOT LIKE $9
     ), upd AS (
       UPDATE verify_runs r SET checked = o.checked + $3, ok = o.ok + $4, failed = o.failed + b.failed, acknowledged = o.acknowledged + b.acknowledged
       FROM others o, b WHERE r.id = $1
     )
     SELECT failed FROM b`,
    [runId, batch, checked, ok, failures.length, [...byId.keys()], [...byId.values()].map((f) => f.result), [...byId.values()].map((f) => f.detail), replaces],
  );
  return r.rows[0].failed as number;
}

/** What a batch had done when its worker last heartbeated: resumed from, its counts kept. */
export interface BatchProgress {
  lastId: string;
  checked: number;
  ok: number;
  failures: BatchOutcome['failures'];
}

/** Blobs read and hashed at once (the concurrency raw read+sha256 is compared with). */
const CONCURRENCY = 8;
/** The first ids of a page, read alone so hashing starts while the rest of the page arrives. */
const PAGE_HEAD = 64;

type PageRow = { id: string; size: number; cold: boolean };

/** Up to `limit` distinct evidence ids after `after`, in id order. */
async function pageOf(ctx: AppContext, input: VerifyRunInput, after: string, limit: number): Promise<PageRow[]> {
  const params: unknown[] = [];
  const where = scope(input, params);
  params.push(after, limit);
  const r = await ctx.db.query(
    `SELECT i.id, max(i.size_bytes) AS size, bool_and(i.tier = 'cold') AS cold FROM evidence_items i WHERE ${where} AND i.id > $${params.length - 1}
     GROUP BY i.id ORDER BY i.id LIMIT $${params.length}`,
    params,
  );
  return r.rows as PageRow[];
}

/**
 * Checks one keyset page of distinct evidence ids. `onProgress` is called as items are done with
 * the last id of the done prefix, so an activity can heartbeat it and resume mid-batch after a crash.
 */
export async function verifyBatch(
  ctx: AppContext,
  input: VerifyRunInput,
  after: string | null,
  resume: BatchProgress | null,
  onProgress: (done: BatchProgress) => void,
): Promise<BatchOutcome> {
  const limit = input.batchSize ?? 500;
  const from = resume?.lastId ?? after ?? '';
  const head = await pageOf(ctx, input, from, Math.min(limit, PAGE_HEAD));
  let rows = head;
  let complete = head.length < PAGE_HEAD || limit <= PAGE_HEAD;
  const rest = complete
    ? Promise.resolve()
    : pageOf(ctx, input, head[head.length - 1]!.id, limit - PAGE_HEAD).then((more) => {
        rows = head.concat(more);
        complete = true;
      });
  rest.catch(() => {}); // awaited by the pool below; a failure is thrown there, not reported as unhandled
  // A resumed batch starts from what its previous attempt had done, so its counts cover the whole page.
  const out: BatchOutcome = { nextAfter: null, checked: resume?.checked ?? 0, ok: resume?.ok ?? 0, failed: 0, failures: [...(resume?.failures ?? [])] };
  const cold = ctx.blobs.primary.withPrefix('cold');
  const check = async (row: PageRow) => {
    if (input.mode !== 'full' && !inSample(input.runId, row.id, input.sampleRate)) return { sampled: false as const };
    // Items moved to the cold tier by retention live under the primary store's `cold` namespace.
    return { sampled: true as const, h: await (row.cold ? cold : ctx.blobs.primary).hash(row.id, Number(row.size)) };
  };
  // A pool of CONCURRENCY reads (one starts as soon as any finishes; per-blob latency - open,
  // read, close - dominates small evidence). Results are taken in id order, so the progress
  // reported (the last id done) always covers every id before it.
  const done: (Awaited<ReturnType<typeof check>> | undefined)[] = [];
  let next = 0;
  let taken = 0;
  const take = () => {
    for (; done[taken] !== undefined; taken++) {
      const row = rows[taken]!;
      const c = done[taken]!;
      done[taken] = undefined;
      if (c.sampled) {
        const { h } = c;
        out.checked++;
        if (!h) out.failures.push({ id: row.id, result: 'missing-blob', detail: `indexed but absent from ${ctx.blobs.primary.location}` });
        else if (h.actual !== row.id) out.failures.push({ id: row.id, result: 'hash-mismatch', detail: `content hashes to ${h.actual}` });
        else if (h.size !== Number(row.size))
          out.failures.push({ id: row.id, result: 'size-mismatch', detail: `index says ${row.size} bytes, store has ${h.size}` });
        else out.ok++;
      }
      if ((taken + 1) % CONCURRENCY === 0) onProgress({ lastId: row.id, checked: out.checked, ok: out.ok, failures: [...out.failures] });
    }
  };
  let stopped = false;
  const worker = async () => {
    try {
      while (!stopped) {
        if (next < rows.length) {
          const i = next++;
          done[i] = await check(rows[i]!);
          if (!stopped) take();
        } else if (complete) return;
        else await rest;
      }
    } catch (e) {
      stopped = true; // the batch fails (and is retried or resumed): no more reads, no more heartbeats
      throw e;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await rest;
  const lastRow = rows[rows.length - 1];
  if (lastRow && taken % CONCURRENCY !== 0) onProgress({ lastId: lastRow.id, checked: out.checked, ok: out.ok, failures: [...out.failures] });
  // A resumed page's last id: the page ends where it ends whichever attempt read it.
  out.nextAfter = rows.length === limit ? lastRow!.id : null;
  out.failed = await record(ctx, input.runId, `items:${after ?? ''}`, out.failures, out.checked, out.ok);
  return out;
}

/**
 * Full mode, after the items: blobs in the store that no index row names, then every copy in
 * the replay area (what replay reads) re-hashed. Returns the failures that count (not acknowledged).
 * `fullListing` lists every directory of a filesystem store, whatever the last listing saw.
 */
export async function findUnindexed(ctx: AppContext, runId: string, onProgress: () => void, opts: { fullListing?: boolean } = {}): Promise<number> {
  return (await findUnindexedBlobs(ctx, runId, onProgress, opts.fullListing ?? false)) + (await verifyReplayCopies(ctx, runId, onProgress));
}

async function findUnindexedBlobs(ctx: AppContext, runId: string, onProgress: () => void, fullListing: boolean): Promise<number> {
  const store = ctx.blobs.primary;
  const unindexed =
    store instanceof FsBlobStore ? await unindexedInFsStore(ctx, store, onProgress, fullListing) : await notIndexed(ctx, store.digests(), onProgress);
  // Each unindexed blob is checked and failed: the run's checked = ok + failed holds. The phase's
  // failures are one batch, 'unindexed': a retried activity (which may list less, the listing
  // state being saved) replaces it, and pages an older worker recorded ('unindexed:<first>') go.
  const detail = `present in ${store.location} but not in the index`;
  return record(
    ctx,
    runId,
    'unindexed',
    unindexed.map((id) => ({ id, result: 'unindexed-blob' as const, detail })),
    unindexed.length,
    0,
    'unindexed:%',
  );
}

/** The digests no index row names (any tenant, any state), looked up 1000 at a time. */
async function notIndexed(ctx: AppContext, digests: Iterable<string> | AsyncIterable<string>, onProgress: () => void): Promise<string[]> {
  const out: string[] = [];
  let page: string[] = [];
  const flush = async () => {
    if (!page.length) return;
    const r = await ctx.db.query('SELECT DISTINCT id FROM evidence_items WHERE id = ANY($1)', [page]);
    const known = new Set(r.rows.map((x) => x.id as string));
    out.push(...page.filter((d) => !known.has(d)));
    page = [];
    onProgress();
  };
  for await (const d of digests) {
    page.push(d);
    if (page.length >= 1000) await flush();
  }
  await flush();
  return out;
}

/**
 * A filesystem store's unindexed blobs without listing every fan-out directory each run: only
 * directories whose stamp changed since the last listing (FsBlobStore.scanDirs: inode, mtime and
 * ctime, with git's racy-window rule) are listed and their blobs looked up; an unchanged
 * directory holds the blobs it held then, so only those that were unindexed then are looked up
 * again (index rows are never deleted, so nothing else in it can have become unindexed). The
 * listing state (verify_store_dirs) is saved after the results, so a crash re-lists.
 */
async function unindexedInFsStore(ctx: AppContext, store: FsBlobStore, onProgress: () => void, fullListing: boolean): Promise<string[]> {
  // Most directories remember no unindexed blob: NULL rather than '{}', so 65,536 rows parse no arrays.
  const saved = await ctx.db.query(
    `SELECT dir, stamp, CASE WHEN cardinality(unindexed) > 0 THEN unindexed END AS unindexed FROM verify_store_dirs WHERE store = $1`,
    [store.location],
  );
  const before = new Map(saved.rows.map((r) => [r.dir as string, { stamp: r.stamp as string | null, unindexed: (r.unindexed as string[] | null) ?? [] }]));
  const scan = await store.scanDirs(fullListing ? new Map() : new Map([...before].map(([dir, v]) => [dir, v.stamp])));
  onProgress();
  const candidates = [...scan.listed.values(), ...scan.unchanged.map((dir) => before.get(dir)?.unindexed ?? [])].flat();
  const unindexed = new Set(await notIndexed(ctx, candidates, onProgress));
  const dirs: string[] = [];
  const stamps: (string | null)[] = [];
  const lists: string[] = [];
  for (const [dir, stamp] of [...scan.stamps].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const now = (scan.listed.get(dir) ?? before.get(dir)?.unindexed ?? []).filter((d) => unindexed.has(d)).join(' ');
    const was = before.get(dir);
    if (was && was.stamp === stamp && was.unindexed.join(' ') === now) continue;
    dirs.push(dir);
    stamps.push(stamp);
    lists.push(now);
  }
  const gone = [...before.keys()].filter((dir) => !scan.stamps.has(dir));
  if (dirs.length || gone.length)
    await ctx.db.query(
      `WITH gone AS (DELETE FROM verify_store_dirs WHERE store = $1 AND dir = ANY($2::text[]))
       INSERT INTO verify_store_dirs (store, dir, stamp, unindexed)
       SELECT $1, d, s, string_to_array(u, ' ') FROM unnest($3::text[], $4::text[], $5::text[]) AS x(d, s, u)
       ON CONFLICT (store, dir) DO UPDATE SET stamp = EXCLUDED.stamp, unindexed = EXCLUDED.unindexed`,
      [store.location, gone, dirs, stamps, lists],
    );
  return [...unindexed];
}

/**
 * The replay area's copies of live replay-bundle evidence, re-hashed. A copy whose every
 * evidence item was purged (retention) is not expected any more and is skipped.
 */
async function verifyReplayCopies(ctx: AppContext, runId: string, onProgress: () => void): Promise<number> {
  const tenant = ((await ctx.db.query('SELECT tenant_id FROM verify_runs WHERE id=$1', [runId])).rows[0]?.tenant_id as string | undefined) ?? '*';
  const area = replayArea(ctx);
  let failed = 0;
  let after = '';
  for (;;) {
    const page = await replayCopyPage(ctx.db, tenant, after, 500);
    if (!page.length) return failed;
    after = page[page.length - 1]!;
    const live = await ctx.db.query(`SELECT DISTINCT id FROM evidence_items WHERE id = ANY($1) AND state <> 'purged' AND ($2 = '*' OR tenant_id = $2)`, [
      page,
      tenant,
    ]);
    const ids = live.rows.map((x) => x.id as string).sort();
    const checks = await mapLimit(ids, 8, async (id) => ({ id, h: await area.hash(id) }));
    const failures: BatchOutcome['failures'] = [];
    for (const { id, h } of checks) {
      const name = `${REPLAY_COPY_PREFIX}${id}`;
      if (!h) failures.push({ id: name, result: 'replay-copy-missing', detail: `replay copy absent from ${area.location}` });
      else if (h.actual !== id) failures.push({ id: name, result: 'replay-copy-mismatch', detail: `replay copy in ${area.location} hashes to ${h.actual}` });
    }
    failed += await record(ctx, runId, `replay:${page[0]}`, failures, ids.length, ids.length - failures.length);
    onProgress();
  }
}

export async function finishVerifyRun(ctx: AppContext, runId: string): Promise<VerifyRunSummary> {
  const r = await ctx.db.query(
    `UPDATE verify_runs SET status = CASE WHEN failed > 0 THEN 'failed' ELSE 'passed' END, finished_at = now() WHERE id = $1 RETURNING *`,
    [runId],
  );
  return summaryOf(r.rows[0]);
}

export interface VerifyRunSummary {
  runId: string;
  mode: string;
  status: string;
  tenant: string;
  total: number;
  checked: number;
  ok: number;
  failed: number;
  /** Failures an operator had acknowledged: listed, but they do not fail the run. */
  acknowledged: number;
  startedAt: string;
  finishedAt: string | null;
  toAnchor: string | null;
  byResult?: Record<string, number>;
}

export function summaryOf(row: Record<string, any>): VerifyRunSummary {
  return {
    runId: row.id,
    mode: row.mode,
    status: row.status,
    tenant: row.tenant_id,
    total: row.total,
    checked: row.checked,
    ok: row.ok,
    failed: row.failed,
    acknowledged: row.acknowledged ?? 0,
    startedAt: new Date(row.started_at).toISOString(),
    finishedAt: row.finished_at ? new Date(row.finished_at).toISOString() : null,
    toAnchor: row.to_anchor,
  };
}

/**
 * A run's summary and results (the latest run without a runId). With a viewer, only the runs it
 * may see (its tenant's; all-tenant runs for admins); without one, every run (diagnostics).
 */
export async function verifyReport(ctx: AppContext, q: { viewer?: Viewer; runId?: string; latest?: boolean; failedOnly?: boolean }) {
  const params: unknown[] = [];
  const where: string[] = [];
  if (q.runId) {
    params.push(q.runId);
    where.push(`id = $${params.length}`);
  }
  if (q.viewer) {
    params.push(visibleTenants(q.viewer));
    where.push(`tenant_id = ANY($${params.length})`);
  }
  const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const run = await ctx.db.query(`SELECT * FROM verify_runs ${filter} ORDER BY started_at DESC LIMIT 1`, params);
  if (!run.rowCount) return null;
  const summary = summaryOf(run.rows[0]);
  const res = await ctx.db.query(
    `SELECT r.item_id, r.result, r.detail, r.checked_at, r.acknowledged, a.reason AS ack_reason, a.actor AS ack_actor, a.acknowledged_at
     FROM verify_results r
     LEFT JOIN LATERAL (SELECT reason, actor, acknowledged_at FROM integrity_acks a WHERE a.item_id = r.item_id AND ($2 = '*' OR a.tenant_id = $2)
                        ORDER BY acknowledged_at DESC LIMIT 1) a ON r.acknowledged
     WHERE r.run_id=$1 ORDER BY r.item_id`,
    [summary.runId, summary.tenant],
  );
  const byResult: Record<string, number> = { ok: summary.ok };
  for (const x of res.rows) {
    const key = x.acknowledged ? 'acknowledged' : x.result;
    byResult[key] = (byResult[key] ?? 0) + 1;
  }
  const results = res.rows
    .filter((x) => !q.failedOnly || x.result !== 'ok')
    .map((x) => ({
      id: x.item_id,
      result: x.result as VerifyResult,
      detail: x.detail,
      checkedAt: new Date(x.checked_at).toISOString(),
      acknowledged: x.acknowledged
        ? { reason: x.ack_reason ?? null, actor: x.ack_actor ?? null, at: x.acknowledged_at ? new Date(x.acknowledged_at).toISOString() : null }
        : null,
    }));
  return { ...summary, byResult, results };
}

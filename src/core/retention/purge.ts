/**
 * Retention engine shared by the purge, tier-move and archive-delete runs: gather facts
 * (gather.ts), decide per item (decide.ts, pure), apply.
 *
 * Purge of one batch = ONE transaction: gather and decide, tombstone the chosen index rows
 * (transitionItems to 'purged'; the evidence_log Merkle leaf is never touched), record them in
 * retention_run_items (blob_done=false), write one audit entry per item and bump the run's
 * counters. The blobs are deleted afterwards and each row marked blob_done. A worker crash
 * anywhere therefore resumes exactly: an item is tombstoned and audited at most once (its state is
 * re-checked under the row lock), and pending blob deletions of the run are finished first by the
 * next attempt. Counts come from the database, never from memory.
 */
import { withTransaction } from '../../db/pool';
import type { AppContext } from '../context';
import type { BlobStore } from '../../blob';
import { badInput } from '../../lib/errors';
import { mapLimit } from '../../lib/concurrency';
import { audit } from '../audit';
import { type Queryable, transitionItems } from '../evidence/state';
import { hotItemsBefore, moveToColdTier, otherTenantLiveTiers } from '../evidence/queries/retention';
import { replayArea } from '../replay/queries/retention';
import { getTiers } from './policy';
import { gatherItemPage, gatherTenantFacts, pageCursor } from './gather';
import {
  type RetentionFacts,
  type RetentionItem,
  type RetentionMode,
  retentionDecision,
  skippedCounts,
  tierMoveCutoffUs,
  tierMoveDue,
  type Verdict,
} from './decide';
import {
  addRunCounts,
  clearRunItems,
  getRun,
  markBlobsDone,
  pendingBlobItems,
  type RetentionRunSummary,
  type RunItemRecord,
  type RunRecord,
  recordRunItems,
  runRecord,
  setPurgeCursor,
  setRunCounts,
} from './runs';

export { OPEN_PROMOTION_STATES, openPromotionArtifacts } from '../promotion/queries/retention';
export { knownTenants } from '../evidence/queries/retention';
export { SUPERSEDED_SCAN_REPORT_DAYS } from './decide';
export * from './runs';

const PAGE = 500;

const modeOf = (run: RunRecord, ids?: readonly string[]): RetentionMode => (ids ? { kind: 'named' } : { kind: 'expire', aggressive: run.aggressive });

interface Decided {
  item: RetentionItem;
  verdict: Verdict;
}

/** Decides every candidate of a run after the cursor `from`, page by page; `visit` returns false to stop. */
async function decideAll(
  q: Queryable,
  run: RunRecord,
  facts: RetentionFacts,
  ids: readonly string[] | undefined,
  visit: (page: Decided[]) => Promise<boolean>,
  from = '',
): Promise<void> {
  const mode = modeOf(run, ids);
  let after = from;
  for (;;) {
    const p = await gatherItemPage(q, run.tenant, facts, mode, { after, limit: PAGE, ids });
    if (!p.items.length) return;
    if ((await visit(p.items.map((item) => ({ item, verdict: retentionDecision(item, p.facts, mode) })))) === false) return;
    after = pageCursor(mode, p.items[p.items.length - 1]!);
  }
}

const toRecord = (d: Decided, blobShared?: boolean): RunItemRecord => ({
  id: d.item.id,
  kind: d.item.kind,
  sizeBytes: d.item.sizeBytes,
  tier: d.item.tier,
  policyId: d.verdict.policyId,
  reason: d.verdict.reason,
  ...(blobShared === undefined ? {} : { blobShared }),
});

/** Counts of due-but-protected items, stored on the run at its start. */
export async function countSkipped(ctx: AppContext, runId: string, ids?: string[]): Promise<{ held: number; promotion: number }> {
  const run = await runRecord(ctx.db, runId);
  const facts = await gatherTenantFacts(ctx.db, run);
  const total = { held: 0, promotion: 0 };
  await decideAll(ctx.db, run, facts, ids, async (page) => {
    const c = skippedCounts(page.map((d) => d.verdict));
    total.held += c.held;
    total.promotion += c.promotion;
    return true;
  });
  await setRunCounts(ctx.db, runId, { skippedHeld: total.held, skippedPromotion: total.promotion });
  return total;
}

/** Dry run: records exactly what would go (and whether its blob would be freed); changes no evidence. */
export async function planRun(ctx: AppContext, runId: string): Promise<RetentionRunSummary> {
  await withTransaction(ctx.db, async (tx) => {
    const run = await runRecord(tx, runId);
    const facts = await gatherTenantFacts(tx, run);
    await clearRunItems(tx, runId);
    const c = { items: 0, bytes: 0, bytesFreed: 0, skippedHeld: 0, skippedPromotion: 0 };
    await decideAll(tx, run, facts, undefined, async (page) => {
      const s = skippedCounts(page.map((d) => d.verdict));
      c.skippedHeld += s.held;
      c.skippedPromotion += s.promotion;
      const go = page.filter((d) => d.verdict.action === 'purge');
      const others = await otherTenantLiveTiers(
        tx,
        run.tenant,
        go.map((d) => d.item.id),
      );
      const recorded = await recordRunItems(
        tx,
        run,
        go.map((d) => toRecord(d, !!others.get(d.item.id)?.has(d.item.tier))),
        true,
      );
      for (const r of recorded) {
        c.items++;
        c.bytes += r.sizeBytes;
        if (!r.blobShared) c.bytesFreed += r.sizeBytes;
      }
      return true;
    });
    await setRunCounts(tx, runId, c);
  });
  return getRun(ctx.db, runId);
}

function storeFor(ctx: AppContext, tier: string): BlobStore {
  return tier === 'cold' ? ctx.blobs.primary.withPrefix('cold') : ctx.blobs.primary;
}

/**
 * Finishes the blob step of every recorded-but-not-done row of a run: deletes the blob copy
 * in `tier` (purge: the item's tier; tier-move: the hot copy) unless another tenant's live
 * row still needs that copy. Idempotent.
 */
export async function finishPendingBlobs(ctx: AppContext, runId: string, onProgress: (n: number) => void = () => {}): Promise<number> {
  const run = await runRecord(ctx.db, runId);
  let done = 0;
  for (;;) {
    const rows = await pendingBlobItems(ctx.db, runId, 500);
    if (!rows.length) return done;
    const others = await otherTenantLiveTiers(
      ctx.db,
      run.tenant,
      rows.map((r) => r.id),
    );
    const marks = await mapLimit(rows, 8, async (row) => {
      const shared = !!others.get(row.id)?.has(row.tier);
      if (!shared) await storeFor(ctx, row.tier).delete(row.id);
      // The replica mirrors hot ingests; it goes only with the last live reference.
      if (run.kind !== 'tier-move' && ctx.blobs.replica && !others.has(row.id)) await ctx.blobs.replica.delete(row.id);
      // So does the copy replay reads (the store's replay/ area): retention applies to it too.
      if (run.kind !== 'tier-move' && !others.has(row.id)) await replayArea(ctx).delete(row.id);
      return { id: row.id, shared };
    });
    await markBlobsDone(ctx.db, runId, marks);
    done += rows.length;
    onProgress(done);
  }
}

/** Tombstones the chosen items (grouped by reason: one state reason per transition) and returns the ones that changed. */
async function tombstone(tx: Queryable, tenant: string, picks: readonly Decided[]): Promise<Decided[]> {
  const byReason = new Map<string, string[]>();
  for (const d of picks) byReason.set(d.verdict.reason, [...(byReason.get(d.verdict.reason) ?? []), d.item.id]);
  const changed = new Set<string>();
  for (const [reason, ids] of byReason)
    for (const id of await transitionItems(tx, tenant, ids, { from: ['present', 'corrupted'], to: 'purged', reason: `retention: ${reason}` })) changed.add(id);
  return picks.filter((d) => changed.has(d.item.id));
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
  const run = await runRecord(ctx.db, runId);
  if (run.dryRun) throw badInput(`run ${runId} is a dry run`);
  const limit = Math.min(Math.max(opts.batchSize ?? 500, 1), 5000);
  const r = await withTransaction(ctx.db, async (tx) => {
    const facts = await gatherTenantFacts(tx, run);
    const picks: Decided[] = [];
    // Expiry runs resume after the items earlier batches decided (purged or kept): eligibility is
    // computed once per item per run, so every batch costs the same at any tenant size. An item
    // kept for a hold released later in the run goes in the next run.
    const mode = modeOf(run, opts.ids);
    let cursor = mode.kind === 'expire' ? run.purgeCursor : '';
    await decideAll(
      tx,
      run,
      facts,
      opts.ids,
      async (page) => {
        for (const d of page) {
          if (picks.length >= limit) break;
          if (d.verdict.action === 'purge') picks.push(d);
          cursor = pageCursor(mode, d.item);
        }
        return picks.length < limit;
      },
      cursor,
    );
    if (mode.kind === 'expire') await setPurgeCursor(tx, runId, cursor);
    const purged = await tombstone(tx, run.tenant, picks);
    const recorded = await recordRunItems(
      tx,
      run,
      purged.map((d) => toRecord(d)),
    );
    for (const i of recorded)
      await audit(tx, {
        tenant: run.tenant,
        actor: run.actor,
        action: 'evidence.purged',
        target: i.id,
        reason: `${run.reason ? `${run.reason}: ` : ''}${i.reason}`,
        details: {
          runId,
          digest: i.id,
          policyId: i.policyId,
          kind: i.kind,
          sizeBytes: i.sizeBytes,
          tier: i.tier,
          aggressive: run.aggressive,
          runKind: run.kind,
          merkleLeafKept: true,
        },
      });
    const bytes = recorded.reduce((a, i) => a + i.sizeBytes, 0);
    await addRunCounts(tx, runId, recorded.length, bytes);
    return { purged: recorded.length, bytes };
  });
  await finishPendingBlobs(ctx, runId, onProgress);
  return r;
}

/** Copies an item to the cold tier unless a verified copy is there already; throws when the copy does not verify. */
async function copyToCold(ctx: AppContext, id: string): Promise<void> {
  const cold = storeFor(ctx, 'cold');
  const have = await cold.hash(id);
  if (have && have.actual === id) return;
  await cold.put(id, await ctx.blobs.primary.getBuffer(id));
  const check = await cold.hash(id);
  if (!check || check.actual !== id) throw new Error(`cold copy does not verify (${check?.actual ?? 'absent'})`);
}

/** One hot->cold batch: copy + verify in cold, flip the tier (audited), then drop the hot copy. */
export async function tierMoveBatch(
  ctx: AppContext,
  runId: string,
  opts: { after?: string | null; batchSize?: number; onProgress?: (n: number) => void } = {},
): Promise<{ moved: number; bytes: number; failed: { id: string; error: string }[]; last: string | null }> {
  const onProgress = opts.onProgress ?? (() => {});
  await finishPendingBlobs(ctx, runId, onProgress);
  const run = await runRecord(ctx.db, runId);
  const tiers = await getTiers(ctx.db, run.tenant);
  const cand = await hotItemsBefore(ctx.db, run.tenant, {
    beforeUs: tierMoveCutoffUs(tiers, run.asOfUs),
    after: opts.after ?? '',
    limit: Math.min(Math.max(opts.batchSize ?? 200, 1), 2000),
  });
  if (!cand.length) return { moved: 0, bytes: 0, failed: [], last: null };
  const last = cand[cand.length - 1]!.id;
  const due = cand.filter((i) => tierMoveDue(i, tiers, run.asOfUs));
  const failed: { id: string; error: string }[] = [];
  let n = 0;
  const copied = (
    await mapLimit(due, 4, async (item) => {
      try {
        await copyToCold(ctx, item.id);
        return item.id;
      } catch (e) {
        failed.push({ id: item.id, error: (e as Error).message });
        return null;
      } finally {
        onProgress(++n);
      }
    })
  ).filter((id): id is string => id !== null);
  const r = await withTransaction(ctx.db, async (tx) => {
    const moved = await moveToColdTier(tx, run.tenant, copied);
    const recorded = await recordRunItems(
      tx,
      run,
      moved.map((m) => ({
        id: m.id,
        kind: m.kind,
        sizeBytes: m.sizeBytes,
        tier: 'hot',
        policyId: 'tiers',
        reason: `older than hot retention of ${tiers.hotDays} days`,
      })),
    );
    for (const i of recorded)
      await audit(tx, {
        tenant: run.tenant,
        actor: run.actor,
        action: 'evidence.tier.cold',
        target: i.id,
        reason: `moved hot -> cold: older than ${tiers.hotDays} days`,
        details: { runId, digest: i.id, kind: i.kind, sizeBytes: i.sizeBytes, coldDays: tiers.coldDays },
      });
    const bytes = recorded.reduce((a, i) => a + i.sizeBytes, 0);
    await addRunCounts(tx, runId, recorded.length, bytes);
    return { moved: recorded.length, bytes };
  });
  await finishPendingBlobs(ctx, runId, onProgress);
  // Items that failed to copy are left hot and reported; the next run retries them.
  return { ...r, failed, last };
}

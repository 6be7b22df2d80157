/** Retention runbooks (SP-004): purge (or dry run), hot->cold tier move, and the daily schedule over every tenant. */
import { proxyActivities, defineQuery, setHandler, continueAsNew, workflowInfo, executeChild } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RetentionRunSummary } from '../src/core/retention/runs';
import { retentionDailyChildId } from '../src/temporal/names';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2, maximumAttempts: 50 },
});

export interface RetentionPurgeInput {
  tenant: string;
  dryRun?: boolean;
  aggressive?: boolean;
  actor?: string;
  reason?: string;
  batchSize?: number;
  /** Defaults to the workflow id. */
  runId?: string;
}

export interface RetentionProgress {
  runId: string;
  phase: 'starting' | 'planning' | 'purging' | 'moving' | 'done';
  items: number;
  bytes: number;
}
export const retentionProgressQuery = defineQuery<RetentionProgress>('progress');

/**
 * Retention purge for one tenant (SP-004 / INC-004). Dry run: records exactly what would go and
 * the bytes freed, changing no evidence. Otherwise purges expired items in batches; each
 * batch activity heartbeats and is idempotent, and the run's counters live in PostgreSQL, so
 * a worker crash resumes with exact counts. Held items and items of open promotions are skipped.
 */
export async function retentionPurge(input: RetentionPurgeInput, carried?: { progress: RetentionProgress }): Promise<RetentionRunSummary> {
  const runId = input.runId || workflowInfo().workflowId;
  const progress: RetentionProgress = carried?.progress ?? { runId, phase: 'starting', items: 0, bytes: 0 };
  setHandler(retentionProgressQuery, () => progress);
  if (!carried) {
    await acts.retentionStart({
      runId,
      tenant: input.tenant,
      kind: 'purge',
      dryRun: !!input.dryRun,
      aggressive: !!input.aggressive,
      actor: input.actor ?? 'retention-schedule',
      reason: input.reason ?? null,
    });
  }
  if (input.dryRun) {
    progress.phase = 'planning';
    const plan = await acts.retentionPlan(runId);
    progress.items = plan.items;
    progress.bytes = plan.bytes;
    progress.phase = 'done';
    return acts.retentionFinish(runId, 'succeeded');
  }
  progress.phase = 'purging';
  let batches = 0;
  for (;;) {
    const r = await acts.retentionPurgeBatch(runId, input.batchSize);
    progress.items += r.purged;
    progress.bytes += r.bytes;
    if (r.purged === 0) break;
    if (++batches >= 100 && workflowInfo().historyLength > 2000) await continueAsNew<typeof retentionPurge>({ ...input, runId }, { progress });
  }
  progress.phase = 'done';
  return acts.retentionFinish(runId, 'succeeded');
}

export interface RetentionTierMoveInput {
  tenant: string;
  actor?: string;
  batchSize?: number;
  runId?: string;
}

/** Moves items older than the tenant's hot retention to the cold tier (durable, resumable). */
export async function retentionTierMove(
  input: RetentionTierMoveInput,
  carried?: { after: string | null; progress: RetentionProgress; failed: number },
): Promise<RetentionRunSummary & { failed: number }> {
  const runId = input.runId || workflowInfo().workflowId;
  const progress: RetentionProgress = carried?.progress ?? { runId, phase: 'starting', items: 0, bytes: 0 };
  setHandler(retentionProgressQuery, () => progress);
  if (!carried) await acts.retentionStart({ runId, tenant: input.tenant, kind: 'tier-move', actor: input.actor ?? 'retention-schedule' });
  progress.phase = 'moving';
  let after = carried?.after ?? null;
  let failed = carried?.failed ?? 0;
  let batches = 0;
  for (;;) {
    const r = await acts.retentionTierBatch(runId, after, input.batchSize);
    progress.items += r.moved;
    progress.bytes += r.bytes;
    failed += r.failed.length;
    if (!r.last) break;
    after = r.last;
    if (++batches >= 100 && workflowInfo().historyLength > 2000)
      await continueAsNew<typeof retentionTierMove>({ ...input, runId }, { after, progress, failed });
  }
  progress.phase = 'done';
  const s = await acts.retentionFinish(runId, failed ? 'failed' : 'succeeded');
  return { ...s, failed };
}

/** The daily schedule `stella-retention-daily`: tier move then purge, per tenant, as child workflows. */
export async function retentionDaily(
  input: { actor?: string; dryRun?: boolean } = {},
): Promise<{ tenant: string; moved: number; purged: number; bytesFreed: number }[]> {
  const tenants = await acts.retentionTenants();
  const base = workflowInfo().workflowId;
  const out: { tenant: string; moved: number; purged: number; bytesFreed: number }[] = [];
  for (const tenant of tenants) {
    const actor = input.actor ?? 'retention-schedule';
    const moved = input.dryRun
      ? null
      : await executeChild(retentionTierMove, { workflowId: retentionDailyChildId(base, tenant, 'tier'), args: [{ tenant, actor }] });
    const purged = await executeChild(retentionPurge, {
      workflowId: retentionDailyChildId(base, tenant, 'purge'),
      args: [{ tenant, actor, dryRun: !!input.dryRun }],
    });
    out.push({ tenant, moved: moved?.items ?? 0, purged: purged.items, bytesFreed: purged.bytesFreed });
  }
  return out;
}

/** Retention activities: each one a call into src/core/retention, errors classified by activities/failure.ts. */
import { heartbeat, Context } from '@temporalio/activity';
import { Connection, Client } from '@temporalio/client';
import type { AppContext } from '../src/core/context';
import {
  startRun,
  planRun,
  purgeBatch,
  tierMoveBatch,
  finishRun,
  countSkipped,
  knownTenants,
  openPromotionArtifacts,
  type RetentionRunInput,
} from '../src/core/retention/purge';
import { SA } from '../src/temporal/names';
import { temporalSecurity } from '../src/temporal/client';
import { classified } from './failure';

/** Artifact digests of running `promotion` workflows (Temporal visibility); [] when unavailable. */
async function runningPromotionArtifacts(ctx: AppContext): Promise<string[]> {
  if (!ctx.cfg.temporal.address) return [];
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address: ctx.cfg.temporal.address, ...temporalSecurity(ctx.cfg), connectTimeout: '5s' });
    const client = new Client({ connection, namespace: ctx.cfg.temporal.namespace });
    const out = new Set<string>();
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'promotion' AND ExecutionStatus = 'Running'` })) {
      const v = (wf.searchAttributes as Record<string, unknown[]> | undefined)?.[SA.artifact.name];
      for (const d of v ?? []) if (typeof d === 'string') out.add(d);
      if (out.size > 50_000) break;
    }
    return [...out];
  } catch (e) {
    ctx.log.warn({ err: (e as Error).message }, 'retention: could not list running promotion workflows; relying on the promotions table');
    return [];
  } finally {
    await connection?.close().catch(() => {});
  }
}

/** Heartbeats progress, and stops promptly when the worker shuts down (the retry resumes). */
function progress(n: number): void {
  heartbeat(n);
  if (Context.current().cancellationSignal.aborted) throw new Error('activity cancelled (worker shutting down); the retry resumes from the database state');
}

export function createRetentionActivities(ctx: AppContext) {
  return {
    /** Creates the run row (idempotent) with the open-promotion artifacts protected for its whole duration. */
    retentionStart: (input: RetentionRunInput) =>
      classified(async () => {
        const open = input.kind === 'purge' ? [...(await openPromotionArtifacts(ctx.db, input.tenant)), ...(await runningPromotionArtifacts(ctx))] : [];
        const run = await startRun(ctx.db, { ...input, protectedArtifacts: [...(input.protectedArtifacts ?? []), ...open] });
        if (input.kind === 'purge' && !input.dryRun) await countSkipped(ctx, run.runId);
        return run;
      }),
    retentionPlan: (runId: string) => classified(() => planRun(ctx, runId)),
    retentionPurgeBatch: (runId: string, batchSize?: number) => classified(() => purgeBatch(ctx, runId, { batchSize, onProgress: progress })),
    retentionTierBatch: (runId: string, after: string | null, batchSize?: number) =>
      classified(() => tierMoveBatch(ctx, runId, { after, batchSize, onProgress: progress })),
    retentionFinish: (runId: string, status: 'succeeded' | 'failed' = 'succeeded') => classified(() => finishRun(ctx.db, runId, status)),
    retentionTenants: () => classified(() => knownTenants(ctx.db)),
  };
}

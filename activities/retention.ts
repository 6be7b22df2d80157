import { heartbeat, activityInfo, Context } from '@temporalio/activity';
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
  openPromotionArtifactsFromDb,
  type RetentionRunInput,
} from '../src/core/retention/purge';

/** Artifact digests of running `promotion` workflows (Temporal visibility); [] when unavailable. */
async function runningPromotionArtifacts(ctx: AppContext): Promise<string[]> {
  if (!ctx.cfg.temporal.address) return [];
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address: ctx.cfg.temporal.address, connectTimeout: '5s' });
    const client = new Client({ connection, namespace: ctx.cfg.temporal.namespace });
    const out = new Set<string>();
    for await (const wf of client.workflow.list({ query: `WorkflowType = 'promotion' AND ExecutionStatus = 'Running'` })) {
      const v = (wf.searchAttributes as Record<string, unknown[]> | undefined)?.StellaArtifactDigest;
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
    async retentionStart(input: RetentionRunInput) {
      let protectedArtifacts = input.protectedArtifacts ?? [];
      if (input.kind === 'purge') {
        protectedArtifacts = [...protectedArtifacts, ...(await openPromotionArtifactsFromDb(ctx.db, input.tenant)), ...(await runningPromotionArtifacts(ctx))];
      }
      const run = await startRun(ctx, { ...input, protectedArtifacts });
      if (input.kind === 'purge' && !input.dryRun) await countSkipped(ctx, run.runId);
      return run;
    },
    async retentionPlan(runId: string) {
      return planRun(ctx, runId);
    },
    async retentionPurgeBatch(runId: string, batchSize?: number) {
      return purgeBatch(ctx, runId, { batchSize, onProgress: progress });
    },
    async retentionTierBatch(runId: string, after: string | null, batchSize?: number) {
      return tierMoveBatch(ctx, runId, { after, batchSize, onProgress: progress });
    },
    async retentionFinish(runId: string, status: 'succeeded' | 'failed' = 'succeeded') {
      return finishRun(ctx, runId, status);
    },
    async retentionTenants() {
      void activityInfo();
      return knownTenants(ctx.db);
    },
  };
}

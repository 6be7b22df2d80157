import { heartbeat, activityInfo } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { opStart, opFinish, rebuildScan, rebuildFinish, type RebuildInput, type RebuildTotals } from '../src/core/locker/index-ops';
import { nonRetryable } from './evidence';

/** Activities of the Evidence Locker maintenance workflows (index rebuild). */
export function createLockerActivities(ctx: AppContext) {
  return {
    async lockerRebuildStart(input: RebuildInput): Promise<void> {
      await opStart(ctx.db, { id: input.opId, tenant: input.tenant, op: 'index.rebuild', actor: input.actor, workflowId: activityInfo().workflowExecution?.workflowId ?? null });
    },
    /**
     * One long scan of the blob store. Progress (cursor + totals) is committed to locker_ops
     * after every page, so a retried attempt — new worker, same op — resumes after the cursor
     * instead of starting over; heartbeats keep a dead worker from holding the run.
     */
    async lockerRebuildScan(input: RebuildInput): Promise<RebuildTotals> {
      try {
        const r = await ctx.db.query('SELECT cursor FROM locker_ops WHERE id=$1', [input.opId]);
        const resumeAfter = (r.rows[0]?.cursor as string | null) ?? null;
        let n = 0;
        return await rebuildScan(ctx, input, resumeAfter, (last, t) => heartbeat({ last, scanned: t.scanned }), () => {
          if (++n % 500 === 0) heartbeat({ listed: n });
        });
      } catch (e) {
        return nonRetryable(e);
      }
    },
    async lockerRebuildFinish(input: RebuildInput, totals: RebuildTotals) {
      return rebuildFinish(ctx, input, totals);
    },
    async lockerOpFailed(opId: string, error: string): Promise<void> {
      await opFinish(ctx.db, opId, 'failed', { error });
    },
  };
}

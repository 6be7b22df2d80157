/** Activities of the Evidence Locker maintenance workflows (index rebuild, archive ingest). */
import { activityInfo, heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { extractIngestArchive, removeIngestWorkDir } from '../src/core/evidence/locker/archive-ingest';
import { opCursor, opFinish, opStart, type RebuildInput, type RebuildTotals, rebuildFinish, rebuildScan } from '../src/core/evidence/locker/index-ops';
import { classified } from './failure';

export function createLockerActivities(ctx: AppContext) {
  return {
    lockerRebuildStart: (input: RebuildInput): Promise<void> =>
      classified(async () => {
        const workflowId = activityInfo().workflowExecution?.workflowId ?? null;
        await opStart(ctx.db, { id: input.opId, tenant: input.tenant, op: 'index.rebuild', actor: input.actor, workflowId });
      }),
    /**
     * One long scan of the blob store. Progress (cursor + totals) is committed to locker_ops
     * after every page, so a retried attempt — new worker, same op — resumes after the cursor
     * instead of starting over; heartbeats keep a dead worker from holding the run.
     */
    lockerRebuildScan: (input: RebuildInput): Promise<RebuildTotals> =>
      classified(async () => {
        let n = 0;
        const onPage = (last: string, t: RebuildTotals) => heartbeat({ last, scanned: t.scanned });
        const onListed = () => {
          if (++n % 500 === 0) heartbeat({ listed: n });
        };
        return rebuildScan(ctx, input, await opCursor(ctx.db, input.opId), onPage, onListed);
      }),
    lockerRebuildFinish: (input: RebuildInput, totals: RebuildTotals) => classified(() => rebuildFinish(ctx, input, totals)),
    lockerExtractArchive: (archive: string, workDir: string) => classified(() => extractIngestArchive(ctx, archive, workDir)),
    lockerRemoveWorkDir: (workDir: string) => classified(() => removeIngestWorkDir(ctx, workDir)),
    lockerOpFailed: (opId: string, error: string) => classified(() => opFinish(ctx.db, opId, 'failed', { error })),
  };
}

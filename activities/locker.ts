import { heartbeat, activityInfo } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { opStart, opFinish, rebuildScan, rebuildFinish, type RebuildInput, type RebuildTotals } from '../src/core/locker/index-ops';
import { promises as fsp } from 'node:fs';
import { extractTar, ArchiveError } from '../src/archive';
import { StellaError } from '../src/lib/errors';
import { spoolWorkDir } from '../src/core/locker/storage';
import { nonRetryable } from './evidence';

/** Activities of the Evidence Locker maintenance workflows (index rebuild). */
export function createLockerActivities(ctx: AppContext) {
  return {
    async lockerRebuildStart(input: RebuildInput): Promise<void> {
      await opStart(ctx.db, {
        id: input.opId,
        tenant: input.tenant,
        op: 'index.rebuild',
        actor: input.actor,
        workflowId: activityInfo().workflowExecution?.workflowId ?? null,
      });
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
        return await rebuildScan(
          ctx,
          input,
          resumeAfter,
          (last, t) => heartbeat({ last, scanned: t.scanned }),
          () => {
            if (++n % 500 === 0) heartbeat({ listed: n });
          },
        );
      } catch (e) {
        return nonRetryable(e);
      }
    },
    async lockerRebuildFinish(input: RebuildInput, totals: RebuildTotals) {
      return rebuildFinish(ctx, input, totals);
    },
    /**
     * Unpacks an evidence tar (plain, gzip or zstd) with the safe extractor into a fresh work
     * directory under <dataDir>/spool. Idempotent: a retry starts from an empty directory.
     */
    async lockerExtractArchive(archive: string, workDir: string): Promise<{ files: number; bytes: number }> {
      const dir = spoolWorkDir(ctx.cfg.dataDir, workDir);
      await fsp.rm(dir, { recursive: true, force: true });
      try {
        const r = await extractTar(archive, dir, { maxEntryBytes: ctx.cfg.maxUploadBytes });
        return { files: r.files.length, bytes: r.bytes };
      } catch (e) {
        await fsp.rm(dir, { recursive: true, force: true });
        if (e instanceof ArchiveError) nonRetryable(new StellaError('BAD_INPUT', `${archive}: ${e.message}`));
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') nonRetryable(new StellaError('BAD_INPUT', `${archive} does not exist`));
        throw e;
      }
    },
    async lockerRemoveWorkDir(workDir: string): Promise<void> {
      await fsp.rm(spoolWorkDir(ctx.cfg.dataDir, workDir), { recursive: true, force: true });
    },
    async lockerOpFailed(opId: string, error: string): Promise<void> {
      await opFinish(ctx.db, opId, 'failed', { error });
    },
  };
}

/** Activities of the evidence workflows (bulk ingest): each a few lines over src/core/evidence. */
import { activityInfo, heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { type BulkBatchResult, type BulkIngestSource, type BulkResume, ingestFiles, listSourceFiles } from '../src/core/evidence';
import { classified } from './failure';

export type { BulkIngestSource } from '../src/core/evidence';

export function createEvidenceActivities(ctx: AppContext) {
  return {
    /** Lists the regular files of a bulk-ingest directory (sorted, so batches are stable across retries). */
    bulkListSource: (src: BulkIngestSource): Promise<string[]> => classified(() => listSourceFiles(src.dir)),

    /** Ingests one batch in commits of a few dozen files; resumes after the last heartbeated file. */
    bulkIngestBatch: (src: BulkIngestSource, files: string[]): Promise<BulkBatchResult> =>
      classified(() => {
        // Heartbeats carry the counts so far; an older heartbeat is just the next index (counts then restart).
        const hb = activityInfo().heartbeatDetails as BulkResume | number | undefined;
        const resume = typeof hb === 'number' ? { next: hb, created: 0, present: 0, bytes: 0, ids: [] } : hb;
        const producer = { type: 'bulk-ingest', workflowId: activityInfo().workflowExecution?.workflowId ?? 'unknown' };
        return ingestFiles(ctx.evidence, src, files, resume, producer, (at) => heartbeat(at));
      }),
  };
}

import { proxyActivities, ApplicationFailure } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RebuildInput, RebuildTotals } from '../src/core/evidence/locker/index-ops';
import type { BulkIngestSource } from '../activities/evidence';
import { bulkIngest, type BulkIngestProgress } from './evidence';

const quick = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2, maximumAttempts: 10 },
});

// The scan lists and reads every blob: long, so it heartbeats and resumes from its cursor.
const scan = proxyActivities<Activities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '5s', maximumInterval: '2 minutes', backoffCoefficient: 2, maximumAttempts: 50 },
});

/**
 * SP-002 / INC-002 `stella evidence index rebuild`: index blobs that are in the store but not
 * in the index (quarantined under the unknown-subject sentinel), as a durable workflow.
 */
export async function evidenceIndexRebuild(input: RebuildInput): Promise<{ opId: string } & RebuildTotals> {
  await quick.lockerRebuildStart(input);
  try {
    const totals = await scan.lockerRebuildScan(input);
    return await quick.lockerRebuildFinish(input, totals);
  } catch (e) {
    const msg = e instanceof ApplicationFailure ? e.message : (e as Error).message;
    await quick.lockerOpFailed(input.opId, msg);
    throw e;
  }
}

export interface ArchiveIngestSource extends Omit<BulkIngestSource, 'dir'> {
  archive: string;
  workDir: string;
  workDirPath: string;
}

/**
 * `stella evidence ingest <file.tar>`: safe extraction into a spool work directory, then the
 * same batched bulk ingest as for a directory (its `progress` query included), then cleanup.
 */
export async function evidenceIngestArchive(src: ArchiveIngestSource, batchSize = 200): Promise<BulkIngestProgress> {
  await scan.lockerExtractArchive(src.archive, src.workDir);
  try {
    const { archive: _a, workDir: _w, workDirPath, ...rest } = src;
    return await bulkIngest({ ...rest, dir: workDirPath }, batchSize);
  } finally {
    await quick.lockerRemoveWorkDir(src.workDir);
  }
}

/** Backup/restore activities: each calls core; every one is idempotent; long ones heartbeat. */
import { heartbeat, activityInfo } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { classified } from './failure';
import { backupExport, backupCopyBlobs, backupFinalize, backupFailed, type BackupInput } from '../src/core/backup/backup';
import {
  restorePrepare,
  restoreIndexBatch,
  restoreIndexFinish,
  restoreBlobBatch,
  restoreVerifyTarget,
  restoreAnchorCheck,
  pointInTimeApply,
  restoreFinish,
  type RestoreInput,
} from '../src/core/backup/restore';
import { backupUpload, restoreFetch, restoreCleanup, s3LocationOf } from '../src/core/backup/s3';

export function createBackupActivities(ctx: AppContext) {
  return {
    backupExport: (input: BackupInput) =>
      classified(async () => {
        const s = await backupExport(ctx, input, (d) => heartbeat(d));
        // Only what the workflow needs: the schema can be large.
        // remote: an s3:// location, so the workflow uploads the staged backup after finalizing.
        return {
          blobBatches: s.blobBatchOffsets.length,
          blobCount: s.blobCount,
          blobBytes: s.blobBytes,
          items: s.itemCount,
          logSize: s.logSize,
          tables: s.tables.length,
          remote: s3LocationOf(ctx, input.dir)?.url ?? null,
        };
      }),
    backupCopyBlobs: (input: BackupInput, batchNo: number) => classified(() => backupCopyBlobs(ctx, input, batchNo, (i) => heartbeat(i))),
    backupFinalize: (input: BackupInput, problems: { id: string; problem: string }[]) => classified(() => backupFinalize(ctx, input, problems)),
    backupUpload: (input: BackupInput) => classified(() => backupUpload(ctx, input, (d) => heartbeat(d))),
    backupFailed: (input: BackupInput, error: string) => backupFailed(ctx, input, error),

    restoreFetch: (input: RestoreInput) => classified(() => restoreFetch(ctx, input, (d) => heartbeat(d))),
    restoreCleanup: (input: RestoreInput) => restoreCleanup(ctx, input.restoreId),
    restorePrepare: (input: RestoreInput) => classified(() => restorePrepare(ctx, input, () => heartbeat())),
    restoreIndexBatch: (input: RestoreInput, table: string, batchNo: number) => classified(() => restoreIndexBatch(ctx, input, table, batchNo)),
    restoreIndexFinish: (input: RestoreInput) => classified(() => restoreIndexFinish(ctx, input)),
    restoreBlobBatch: (input: RestoreInput, batchNo: number) => classified(() => restoreBlobBatch(ctx, input, batchNo, (i) => heartbeat(i))),
    restoreVerifyTarget: (input: RestoreInput) => classified(() => restoreVerifyTarget(ctx, input, () => heartbeat())),
    restoreAnchorCheck: (input: RestoreInput) => classified(() => restoreAnchorCheck(ctx, input)),
    restorePointInTime: (input: RestoreInput) => classified(() => pointInTimeApply(ctx, input)),
    async restoreFinish(input: RestoreInput, result: { outcome: string }) {
      await restoreFinish(ctx, input, result);
      return { attempt: activityInfo().attempt };
    },
  };
}

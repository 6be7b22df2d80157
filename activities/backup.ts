import { heartbeat, activityInfo } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { nonRetryable } from './evidence';
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

/** Backup/restore activities. Every one is idempotent; long ones heartbeat. */
export function createBackupActivities(ctx: AppContext) {
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      return nonRetryable(e);
    }
  };
  return {
    async backupExport(input: BackupInput) {
      return guard(async () => {
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
      });
    },
    async backupCopyBlobs(input: BackupInput, batchNo: number) {
      return guard(() => backupCopyBlobs(ctx, input, batchNo, (i) => heartbeat(i)));
    },
    async backupFinalize(input: BackupInput, problems: { id: string; problem: string }[]) {
      return guard(() => backupFinalize(ctx, input, problems));
    },
    async backupUpload(input: BackupInput) {
      return guard(() => backupUpload(ctx, input, (d) => heartbeat(d)));
    },
    async backupFailed(input: BackupInput, error: string) {
      await backupFailed(ctx, input, error);
    },

    async restoreFetch(input: RestoreInput) {
      return guard(() => restoreFetch(ctx, input, (d) => heartbeat(d)));
    },
    async restoreCleanup(input: RestoreInput) {
      await restoreCleanup(ctx, input.restoreId);
    },
    async restorePrepare(input: RestoreInput) {
      return guard(() => restorePrepare(ctx, input, () => heartbeat()));
    },
    async restoreIndexBatch(input: RestoreInput, table: string, batchNo: number) {
      return guard(() => restoreIndexBatch(ctx, input, table, batchNo));
    },
    async restoreIndexFinish(input: RestoreInput) {
      return guard(() => restoreIndexFinish(ctx, input));
    },
    async restoreBlobBatch(input: RestoreInput, batchNo: number) {
      return guard(() => restoreBlobBatch(ctx, input, batchNo, (i) => heartbeat(i)));
    },
    async restoreVerifyTarget(input: RestoreInput) {
      return guard(() => restoreVerifyTarget(ctx, input, () => heartbeat()));
    },
    async restoreAnchorCheck(input: RestoreInput) {
      return guard(() => restoreAnchorCheck(ctx, input));
    },
    async restorePointInTime(input: RestoreInput) {
      return guard(() => pointInTimeApply(ctx, input));
    },
    async restoreFinish(input: RestoreInput, result: Record<string, unknown> & { outcome: string }) {
      await restoreFinish(ctx, input, result);
      return { attempt: activityInfo().attempt };
    },
  };
}

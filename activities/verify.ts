import { heartbeat, activityInfo } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { startVerifyRun, verifyBatch, findUnindexed, finishVerifyRun, type VerifyRunInput } from '../src/core/verify';

export function createVerifyActivities(ctx: AppContext) {
  return {
    async verifyStart(input: VerifyRunInput) {
      return startVerifyRun(ctx, input, activityInfo().workflowExecution?.workflowId ?? 'unknown');
    },
    /** Resumes from the last heartbeated id when a worker died mid-batch. */
    async verifyBatch(input: VerifyRunInput, after: string | null) {
      const resumeFrom = (activityInfo().heartbeatDetails as string | undefined) ?? null;
      return verifyBatch(ctx, input, after, resumeFrom, (last) => heartbeat(last));
    },
    async verifyUnindexed(runId: string) {
      return findUnindexed(ctx, runId, () => heartbeat());
    },
    async verifyFinish(runId: string) {
      return finishVerifyRun(ctx, runId);
    },
  };
}

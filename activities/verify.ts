/** Activities of the integrity-verification workflow (workflows/evidence.ts verifyEvidence). */
import { activityInfo, heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { findUnindexed, finishVerifyRun, startVerifyRun, type VerifyRunInput, verifyBatch } from '../src/core/evidence/locker/verify';
import { classified } from './failure';

export function createVerifyActivities(ctx: AppContext) {
  return {
    verifyStart: (input: VerifyRunInput) => classified(() => startVerifyRun(ctx, input, activityInfo().workflowExecution?.workflowId ?? 'unknown')),
    /** Resumes from the last heartbeated id when a worker died mid-batch. */
    verifyBatch: (input: VerifyRunInput, after: string | null) =>
      classified(() => {
        const resumeFrom = (activityInfo().heartbeatDetails as string | undefined) ?? null;
        return verifyBatch(ctx, input, after, resumeFrom, (last) => heartbeat(last));
      }),
    verifyUnindexed: (runId: string) => classified(() => findUnindexed(ctx, runId, () => heartbeat())),
    verifyFinish: (runId: string) => classified(() => finishVerifyRun(ctx, runId)),
  };
}

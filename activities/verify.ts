/** Activities of the integrity-verification workflow (workflows/evidence.ts verifyEvidence). */
import { activityInfo, heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { type BatchProgress, findUnindexed, finishVerifyRun, startVerifyRun, type VerifyRunInput, verifyBatch } from '../src/core/evidence/locker/verify';
import { classified } from './failure';

export function createVerifyActivities(ctx: AppContext) {
  return {
    verifyStart: (input: VerifyRunInput) => classified(() => startVerifyRun(ctx, input, activityInfo().workflowExecution?.workflowId ?? 'unknown')),
    /** Resumes from the last heartbeat (the last id done and the counts so far) when a worker died mid-batch. */
    verifyBatch: (input: VerifyRunInput, after: string | null) =>
      classified(() => verifyBatch(ctx, input, after, resumeOf(activityInfo().heartbeatDetails), (done) => heartbeat(done))),
    verifyUnindexed: (runId: string) => classified(() => findUnindexed(ctx, runId, () => heartbeat())),
    verifyFinish: (runId: string) => classified(() => finishVerifyRun(ctx, runId)),
  };
}

/** Heartbeat details: a BatchProgress, or (from an older worker) only the last id done. */
function resumeOf(details: unknown): BatchProgress | null {
  if (typeof details === 'string') return { lastId: details, checked: 0, ok: 0, failures: [] };
  if (details && typeof details === 'object' && typeof (details as BatchProgress).lastId === 'string') return details as BatchProgress;
  return null;
}

import { proxyActivities, defineQuery, setHandler, continueAsNew, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { heavyActivities } from './queues';
import type { BulkIngestSource } from '../activities/evidence';
import type { VerifyRunInput, VerifyRunSummary } from '../src/core/evidence/locker/verify';

const actsOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '60 seconds',
  retry: { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2, maximumAttempts: 20 },
} as const;
const acts = proxyActivities<Activities>(actsOptions);

export interface BulkIngestProgress {
  total: number;
  done: number;
  created: number;
  present: number;
  bytes: number;
}
export const bulkIngestProgressQuery = defineQuery<BulkIngestProgress>('progress');

/** Ingests every regular file under a directory as evidence for one artifact, in batches. */
export async function bulkIngest(src: BulkIngestSource, batchSize = 200): Promise<BulkIngestProgress> {
  const files = await acts.bulkListSource(src);
  const p: BulkIngestProgress = { total: files.length, done: 0, created: 0, present: 0, bytes: 0 };
  setHandler(bulkIngestProgressQuery, () => p);
  for (let i = 0; i < files.length; i += batchSize) {
    const r = await acts.bulkIngestBatch(src, files.slice(i, i + batchSize));
    p.done += Math.min(batchSize, files.length - i);
    p.created += r.created;
    p.present += r.present;
    p.bytes += r.bytes;
  }
  return p;
}

export interface VerifyProgress {
  runId: string;
  mode: string;
  total: number;
  checked: number;
  scanned: number;
  ok: number;
  failed: number;
  phase: 'items' | 'unindexed' | 'done';
}
export const verifyProgressQuery = defineQuery<VerifyProgress>('progress');

/**
 * Integrity verification (SP-001). Batches of activities over the index in id order; each
 * batch heartbeats the last id, so a worker crash resumes where it stopped. History stays
 * bounded via continue-as-new on very large lockers.
 */
export async function verifyEvidence(rawInput: VerifyRunInput, carried?: { after: string | null; progress: VerifyProgress }): Promise<VerifyRunSummary> {
  // Scheduled runs pass no run id: the (unique) workflow id serves.
  const input: VerifyRunInput = { ...rawInput, runId: rawInput.runId || workflowInfo().workflowId };
  let progress: VerifyProgress = carried?.progress ?? {
    runId: input.runId,
    mode: input.mode,
    total: 0,
    checked: 0,
    scanned: 0,
    ok: 0,
    failed: 0,
    phase: 'items',
  };
  setHandler(verifyProgressQuery, () => progress);
  let after: string | null = carried?.after ?? null;
  if (!carried) {
    const { total } = await acts.verifyStart(input);
    progress = { ...progress, total };
  }
  let batches = 0;
  for (;;) {
    // Full verification re-hashes every blob: the heavy task queue for new runs (./queues).
    const r = await (input.mode === 'full' ? heavyActivities<Activities>(actsOptions) : acts).verifyBatch(input, after);
    progress.checked += r.checked;
    progress.ok += r.ok;
    progress.failed += r.failed;
    progress.scanned += (input.batchSize ?? 500) * (r.nextAfter ? 1 : 0);
    if (!r.nextAfter) break;
    after = r.nextAfter;
    if (++batches >= 200 && workflowInfo().historyLength > 2000) {
      await continueAsNew<typeof verifyEvidence>(input, { after, progress });
    }
  }
  progress.scanned = progress.total;
  if (input.mode === 'full' && input.maxLogSize == null) {
    progress.phase = 'unindexed';
    const unindexed = await acts.verifyUnindexed(input.runId);
    progress.checked += unindexed;
    progress.failed += unindexed;
  }
  progress.phase = 'done';
  return acts.verifyFinish(input.runId);
}

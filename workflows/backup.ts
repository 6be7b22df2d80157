/** Backup (DR-001) and restore / point-in-time restore (DR-001, DR-002) as durable runbooks. */
import { defineQuery, setHandler, workflowInfo, executeChild } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupInput, BackupSummary } from '../src/core/backup/backup';
import type { RestoreInput, RestorePlan, AnchorCheck, PitResult } from '../src/core/backup/restore';
import type { VerifyRunSummary } from '../src/core/evidence/locker/verify';
import { restoreVerifyWorkflowId } from '../src/temporal/names';
import { verifyEvidence } from './evidence';
import { heavyActivities } from './queues';

// Batches are short, so a dead worker is noticed quickly (heartbeat timeout) and the batch retried.
// Every backup/restore step (export, compression, uploads, blob copies) runs on the heavy task queue for new runs (./queues).
const actsOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1s', maximumInterval: '30s', backoffCoefficient: 2, maximumAttempts: 20 },
} as const;
const acts = () => heavyActivities<Activities>(actsOptions);

export interface BackupProgress {
  backupId: string;
  phase: 'export' | 'blobs' | 'finalize' | 'upload' | 'done';
  blobBatches: number;
  blobBatchesDone: number;
  blobsCopied: number;
  bytes: number;
}
export const backupProgressQuery = defineQuery<BackupProgress>('progress');

/** `stella backup create --type evidence-locker` and the stella-backup-daily schedule. */
export async function backupEvidenceLocker(raw: BackupInput): Promise<BackupSummary> {
  // Scheduled runs pass no id: derive a path-safe one from the (unique) workflow id.
  const input: BackupInput = { ...raw, backupId: raw.backupId || workflowInfo().workflowId.replace(/[^A-Za-z0-9._-]/g, '-'), actor: raw.actor || 'schedule' };
  const p: BackupProgress = { backupId: input.backupId, phase: 'export', blobBatches: 0, blobBatchesDone: 0, blobsCopied: 0, bytes: 0 };
  setHandler(backupProgressQuery, () => p);
  try {
    const ex = await acts().backupExport(input);
    p.phase = 'blobs';
    p.blobBatches = ex.blobBatches;
    const problems: { id: string; problem: string }[] = [];
    for (let b = 0; b < ex.blobBatches; b++) {
      const r = await acts().backupCopyBlobs(input, b);
      p.blobBatchesDone++;
      p.blobsCopied += r.copied;
      p.bytes += r.bytes;
      problems.push(...r.problems);
    }
    p.phase = 'finalize';
    let summary = await acts().backupFinalize(input, problems);
    if (ex.remote) {
      // s3:// location: the staged backup goes up, manifest last (absent from older histories: no upload).
      p.phase = 'upload';
      summary = await acts().backupUpload(input);
    }
    p.phase = 'done';
    return summary;
  } catch (e) {
    await acts().backupFailed(input, (e as Error).message);
    throw e;
  }
}

export interface RestoreProgress {
  restoreId: string;
  phase: 'fetch' | 'prepare' | 'index' | 'blobs' | 'verify' | 'anchors' | 'point-in-time' | 'done';
  tables: number;
  tablesDone: number;
  rows: number;
  rowsDone: number;
  blobs: number;
  blobsDone: number;
  bytesDone: number;
  batchesDone: number;
}
export const restoreProgressQuery = defineQuery<RestoreProgress>('progress');

export type RestoreOutcome = {
  restoreId: string;
  backupId: string | null;
  outcome: 'passed' | 'failed';
  target: string;
  items: number;
  logSize: number;
  blobsRestored: number;
  verify:
    | ({ kind: 'verify-workflow' } & Pick<VerifyRunSummary, keyof VerifyRunSummary>)
    | { kind: 'target-rehash'; checked: number; ok: number; failed: number; failures: { id: string; result: string }[] }
    | null;
  anchors: AnchorCheck | null;
  pointInTime: PitResult | null;
  nextSteps: string[];
};

/**
 * DR-001 / DR-002 as one durable workflow: migrations + checks, the index table by table in
 * batches, the blobs in batches, then `verify --mode full` (the verifyEvidence workflow as a
 * child) and `anchor verify --all`, and the outcome. Point-in-time (toAnchor) runs after the
 * index (or alone, on the live index, without a backup).
 */
export async function restoreEvidenceLocker(raw: RestoreInput): Promise<RestoreOutcome> {
  let input: RestoreInput = { ...raw, restoreId: raw.restoreId || workflowInfo().workflowId };
  // An s3:// backup is fetched (and checked against its manifest) into a local staging directory
  // first; everything after works on that copy, which goes at the end whatever the outcome.
  const remote = !!input.backupId && /^s3:\/\//i.test(input.backupDir ?? '');
  if (!remote) return restoreFrom(input);
  const stage: RestoreProgress = { ...emptyProgress(input.restoreId), phase: 'fetch' };
  setHandler(restoreProgressQuery, () => stage);
  try {
    const f = await acts().restoreFetch(input);
    input = { ...input, backupDir: f.dir };
    return await restoreFrom(input);
  } finally {
    await acts().restoreCleanup(input);
  }
}

function emptyProgress(restoreId: string): RestoreProgress {
  return { restoreId, phase: 'prepare', tables: 0, tablesDone: 0, rows: 0, rowsDone: 0, blobs: 0, blobsDone: 0, bytesDone: 0, batchesDone: 0 };
}

/** prepare → copy index rows and blobs (a backup) → point-in-time cut (an anchor) → verify → anchors → record. */
async function restoreFrom(input: RestoreInput): Promise<RestoreOutcome> {
  const p = emptyProgress(input.restoreId);
  setHandler(restoreProgressQuery, () => p);
  const plan: RestorePlan = await acts().restorePrepare(input);
  p.tables = plan.tables.length;
  p.rows = plan.tables.reduce((s, t) => s + t.rows, 0);
  p.blobs = plan.blobCount;
  const copied = plan.backupId ? await copyBackup(input, plan, p) : { items: plan.itemCount, logSize: plan.logSize };
  let pit: PitResult | null = null;
  if (input.toAnchor) {
    p.phase = 'point-in-time';
    pit = await acts().restorePointInTime(input);
  }
  const checked = input.skipVerify ? { verify: null, anchors: null, nextSteps: [] } : await verifyRestore(input, plan, pit?.logSize ?? null, p);
  const { verify, anchors } = checked;
  const verifyOk = !verify || (verify.kind === 'verify-workflow' ? verify.status === 'passed' : verify.failed === 0);
  const outcome: RestoreOutcome = {
    restoreId: input.restoreId,
    backupId: plan.backupId,
    outcome: verifyOk && (!anchors || anchors.ok) ? 'passed' : 'failed',
    target: plan.target,
    items: copied.items,
    logSize: copied.logSize,
    blobsRestored: p.blobsDone,
    verify,
    anchors,
    pointInTime: pit,
    nextSteps: checked.nextSteps,
  };
  await acts().restoreFinish(input, outcome);
  p.phase = 'done';
  return outcome;
}

/** Index rows table by table in batches, then blobs in batches; the restored item count and log size. */
async function copyBackup(input: RestoreInput, plan: RestorePlan, p: RestoreProgress): Promise<{ items: number; logSize: number }> {
  p.phase = 'index';
  for (const t of plan.tables) {
    for (let b = 0; b < t.batches; b++) {
      const r = await acts().restoreIndexBatch(input, t.name, b);
      p.rowsDone += r.rows;
      p.batchesDone++;
    }
    p.tablesDone++;
  }
  const fin = await acts().restoreIndexFinish(input);
  p.phase = 'blobs';
  for (let b = 0; b < plan.blobBatches; b++) {
    const r = await acts().restoreBlobBatch(input, b);
    p.blobsDone += r.blobs;
    p.bytesDone += r.bytes;
    p.batchesDone++;
  }
  return { items: fin.items, logSize: fin.logSize };
}

/** Full verify of the restored locker (a child workflow when it is the primary, a re-hash of the target otherwise), then the anchors. */
async function verifyRestore(
  input: RestoreInput,
  plan: RestorePlan,
  maxLogSize: number | null,
  p: RestoreProgress,
): Promise<{ verify: RestoreOutcome['verify']; anchors: AnchorCheck; nextSteps: string[] }> {
  p.phase = 'verify';
  const nextSteps: string[] = [];
  let verify: RestoreOutcome['verify'];
  if (plan.targetIsPrimary) {
    const runId = restoreVerifyWorkflowId(input.restoreId);
    const v = await executeChild(verifyEvidence, {
      workflowId: runId,
      args: [{ runId, tenant: null, mode: 'full', sampleRate: 1, toAnchor: input.toAnchor ?? null, maxLogSize }],
    });
    verify = { kind: 'verify-workflow', ...v };
  } else {
    verify = { kind: 'target-rehash', ...(await acts().restoreVerifyTarget(input)) };
    nextSteps.push(`stella config set EvidenceLocker:Path ${plan.target}`, 'stella service restart', 'stella evidence verify --mode full');
  }
  p.phase = 'anchors';
  const anchors = await acts().restoreAnchorCheck(input);
  return { verify, anchors, nextSteps };
}

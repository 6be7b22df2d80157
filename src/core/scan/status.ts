/** What operators see of scans: one run's status, the runs of an artifact, the pending queue. */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { AppContext } from '../context';
import { notFound } from '../../lib/errors';
import { rootFailure } from '../../temporal/failure';
import { isScanWorkflowIdOf, SA, scanWorkflowId } from '../../temporal/names';
import { autoScanConfig, type AutoScanConfig } from './config';
import { pendingEvents, type ScanEvent } from './events';
import { getScanRun, listScanRuns, type ScanRun } from './runs';
import type { ScanWorkflows } from './start';
import type { ScanProgress } from './types';

export type ScanStatus = {
  workflowId: string;
  runId: string;
  status: string;
  progress: ScanProgress | null;
  error: string | null;
  errorType: string | null;
  /** The failure's StellaError code (BAD_INPUT, INTEGRITY…), if it carried one. */
  errorCode: string | null;
  run: ScanRun | null;
};

/** Status of one scan workflow run of this tenant (its id embeds the tenant: others are not found). */
export async function scanStatus(ctx: AppContext, t: ScanWorkflows, tenant: string, workflowId: string, runId?: string): Promise<ScanStatus> {
  if (!isScanWorkflowIdOf(tenant, workflowId)) throw notFound(`scan ${workflowId} not found`);
  const h = t.client.workflow.getHandle(workflowId, runId);
  let d: Awaited<ReturnType<typeof h.describe>>;
  try {
    d = await h.describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(`scan ${workflowId} not found`);
    throw e;
  }
  const status = d.status.name;
  let progress: ScanProgress | null = null;
  let error: string | null = null;
  let errorType: string | null = null;
  let errorCode: string | null = null;
  if (status === 'RUNNING') progress = await h.query(t.progress).catch(() => null);
  else if (status === 'COMPLETED') progress = (await h.result()) as ScanProgress;
  else {
    try {
      await h.result();
    } catch (e) {
      const c = (e as { cause?: { message?: string; type?: string; details?: unknown[] } }).cause;
      // The root cause's message and code, not the wrapper's "Activity task failed".
      const root = rootFailure(e);
      error = root.message;
      errorCode = root.code;
      errorType = c?.type ?? null;
      progress = (c?.details?.[0] as ScanProgress | undefined) ?? null;
    }
  }
  return { workflowId, runId: d.runId, status, progress, error, errorType, errorCode, run: await getScanRun(ctx, tenant, d.runId) };
}

/** Scan runs (scan_runs) with the live Temporal status where history is still there. */
export async function listRunsWithStatus(
  ctx: AppContext,
  t: ScanWorkflows | null,
  tenant: string,
  q: { artifact?: string; limit?: number },
): Promise<(ScanRun & { temporalStatus: string | null })[]> {
  const runs = await listScanRuns(ctx, tenant, q);
  const out: (ScanRun & { temporalStatus: string | null })[] = [];
  for (const r of runs) {
    let temporalStatus: string | null = null;
    if (t) {
      try {
        temporalStatus = (await t.client.workflow.getHandle(r.workflowId, r.scanId).describe()).status.name;
      } catch {
        temporalStatus = null; // history gone (retention) or Temporal unreachable: the DB record stands
      }
    }
    out.push({ ...r, temporalStatus });
  }
  return out;
}

export type QueuedWorkflow = {
  workflowId: string;
  runId: string;
  status: string;
  startTime: string;
  artifact: string | null;
  progress: ScanProgress | null;
};

/** Pending/running scans (Temporal visibility) and auto-scan events that did not start one. */
export async function scanQueue(
  ctx: AppContext,
  t: ScanWorkflows,
  tenant: string,
  q: { artifact?: string },
): Promise<{ workflows: QueuedWorkflow[]; events: ScanEvent[]; autoScan: AutoScanConfig }> {
  const query = `WorkflowType='scanThenAttest' AND ExecutionStatus='Running'`;
  const exact = q.artifact ? scanWorkflowId(tenant, q.artifact) : null;
  const workflows: QueuedWorkflow[] = [];
  for await (const w of t.client.workflow.list({ query, pageSize: 200 })) {
    // Promotion-started children carry no search attributes: match on the id, which embeds tenant and digest.
    if (exact ? w.workflowId !== exact : !isScanWorkflowIdOf(tenant, w.workflowId)) continue;
    const progress = await t.client.workflow
      .getHandle(w.workflowId, w.runId)
      .query(t.progress)
      .catch(() => null);
    workflows.push({
      workflowId: w.workflowId,
      runId: w.runId,
      status: w.status.name,
      startTime: w.startTime.toISOString(),
      artifact: w.typedSearchAttributes.get(SA.artifact) ?? null,
      progress,
    });
    if (workflows.length >= 200) break;
  }
  return { workflows, events: await pendingEvents(ctx, tenant, q.artifact), autoScan: await autoScanConfig(ctx, tenant) };
}

import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2s', maximumInterval: '1 minute', maximumAttempts: 10 },
});

export interface NightlyReplayInput {
  latestN: number;
  concurrency?: number;
  incident?: string | null;
}
export interface NightlyReplayResult {
  tenants: number;
  verified: number;
  passed: number;
  failed: { tenant: string; scanId: string; codes: string[]; holdId: string | null }[];
}

/**
 * Nightly replay verification (runbook §2.2): the latest N manifests of every tenant, with
 * bounded concurrency; failures are held and their codes stored for `stella verify --explain`.
 */
export async function replayVerifyNightly(input: NightlyReplayInput): Promise<NightlyReplayResult> {
  const concurrency = Math.max(1, input.concurrency ?? 4);
  const out: NightlyReplayResult = { tenants: 0, verified: 0, passed: 0, failed: [] };
  const incident = input.incident ?? `replay-nightly-${workflowInfo().workflowId}`;
  for (const tenant of await acts.replayTenants()) {
    out.tenants++;
    const ids = await acts.replayLatest(tenant, input.latestN);
    for (let i = 0; i < ids.length; i += concurrency) {
      const results = await Promise.all(ids.slice(i, i + concurrency).map((id) => acts.replayVerifyOne(tenant, id, 'nightly', incident)));
      for (const r of results) {
        out.verified++;
        if (r.ok) out.passed++;
        else out.failed.push({ tenant, scanId: r.scanId, codes: r.codes, holdId: r.holdId });
      }
    }
  }
  return out;
}

import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CreateAnchorResult } from '../src/core/anchoring/create';
import type { AnchorVerifySummary } from '../activities/anchoring';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { initialInterval: '2s', maximumInterval: '1 minute', backoffCoefficient: 2, maximumAttempts: 10 },
});

export interface AnchorEvidenceInput {
  reason?: string;
  /** Anchor even if the log has not grown since the last anchor. */
  force?: boolean;
  /** Run `verify --latest` after anchoring (the schedule does; feeds the chain-ok metric). */
  verify?: boolean;
  actor?: string;
}

export interface AnchorEvidenceResult extends CreateAnchorResult {
  verify: AnchorVerifySummary | null;
}

/**
 * SP-003 Merkle anchoring: on the `stella-merkle-anchor` schedule (every 6h by default) and on
 * demand. The run id is the idempotency key, so activity retries never create a second anchor.
 */
export async function anchorEvidence(input: AnchorEvidenceInput = {}): Promise<AnchorEvidenceResult> {
  const info = workflowInfo();
  const created = await acts.anchorCreate({
    reason: input.reason,
    force: input.force,
    actor: input.actor ?? 'schedule',
    requestId: `${info.workflowId}/${info.runId}`,
  });
  const verify = input.verify ? await acts.anchorVerify({ scope: 'latest' }) : null;
  return { ...created, verify };
}

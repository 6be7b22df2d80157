import { heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { createAnchor, verifyAnchors, type CreateAnchorResult } from '../src/core/anchoring';
import { nonRetryable } from './evidence';

export interface AnchorCreateInput {
  reason?: string;
  force?: boolean;
  requestId: string;
  actor?: string;
}
export interface AnchorVerifySummary {
  ok: boolean;
  scope: 'latest' | 'all';
  checked: number;
  total: number;
  firstBreak: { anchorId: string; reason: string; detail: string } | null;
  logRows: number;
}

export function createAnchoringActivities(ctx: AppContext) {
  return {
    /**
     * Incremental anchor (O(k + log N)). Idempotent: requestId is the workflow run, so a retry
     * after a crash finds the anchor the first attempt committed instead of adding another.
     */
    async anchorCreate(input: AnchorCreateInput): Promise<CreateAnchorResult> {
      try {
        return await createAnchor(ctx, { ...input, onProgress: (p) => heartbeat(p) });
      } catch (e) {
        return nonRetryable(e);
      }
    },

    /** verify --latest|--all; records the outcome for stella_merkle_anchor_chain_ok. */
    async anchorVerify(input: { scope: 'latest' | 'all' }): Promise<AnchorVerifySummary> {
      try {
        const r = await verifyAnchors(ctx, { scope: input.scope, onProgress: (p) => heartbeat(p) });
        const fb = r.firstBreak;
        return {
          ok: r.ok,
          scope: r.scope,
          checked: r.checked,
          total: r.total,
          firstBreak: fb ? { anchorId: fb.anchorId, reason: fb.reason, detail: fb.detail } : null,
          logRows: r.logRows.filter((x) => !x.acknowledged).length,
        };
      } catch (e) {
        return nonRetryable(e);
      }
    },
  };
}

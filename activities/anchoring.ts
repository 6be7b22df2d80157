/** Anchoring activities: each calls core and classifies its errors (activities/failure.ts). */
import { heartbeat } from '@temporalio/activity';
import type { AppContext } from '../src/core/context';
import { createAnchor, verifyAnchors, type CreateAnchorResult } from '../src/core/anchoring';
import { classified } from './failure';

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
    anchorCreate: (input: AnchorCreateInput): Promise<CreateAnchorResult> => classified(() => createAnchor(ctx, { ...input, onProgress: (p) => heartbeat(p) })),

    /** verify --latest|--all; records the outcome for stella_merkle_anchor_chain_ok. */
    anchorVerify: (input: { scope: 'latest' | 'all' }): Promise<AnchorVerifySummary> =>
      classified(async () => {
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
      }),
  };
}

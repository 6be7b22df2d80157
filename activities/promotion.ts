/** Promotion activities: short DB/blob work the promotion workflow runs as local activities. */
import type { AppContext } from '../src/core/context';
import { type ActionRequest, type ActionVerdict, verifyPromotionAction } from '../src/core/promotion/actions';
import { evaluatePromotion } from '../src/core/promotion/evaluate';
import { type RecordOutcome, recordOutcome } from '../src/core/promotion/outcome';
import { setPromotionState } from '../src/core/promotion/store';
import type { Approval, EvaluateGatesInput, EvaluateGatesResult, PromotionStateName } from '../src/core/promotion/types';
import { classified } from './failure';

/** All idempotent (upserts, state guards), so a retry or a replay after a worker crash is safe. */
export function createPromotionActivities(ctx: AppContext) {
  return {
    /** gatherEvidence → decideGates → record this attempt's gate results. */
    async evaluateGates(req: EvaluateGatesInput & { startedAt: string }): Promise<EvaluateGatesResult & { deadline: string }> {
      return classified(() => evaluatePromotion(ctx, req));
    },

    async promotionSetState(q: {
      tenant: string;
      promotionId: string;
      state: PromotionStateName;
      reason?: string | null;
      approvals?: Approval[];
    }): Promise<void> {
      return classified(() => setPromotionState(ctx.db, q));
    },

    /** Approve/abort/retry: verifies the action token and its binding, audits the outcome either way. */
    async promotionVerifyAction(r: ActionRequest): Promise<ActionVerdict> {
      return classified(() => verifyPromotionAction(ctx, r));
    },

    /** The final record; for `promoted`, whether the target environment publishes (the workflow skips its publish step when not). */
    async promotionFinalize(f: RecordOutcome): Promise<{ changed: boolean; publish?: boolean }> {
      return classified(() => recordOutcome(ctx, f));
    },
  };
}

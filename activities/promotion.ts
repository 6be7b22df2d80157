import type { AppContext } from '../src/core/context';
import { evaluateGates as evaluate, lookupImageRef } from '../src/core/promotion/gates';
import { resolvePolicy, policyTimings } from '../src/core/promotion/policy';
import { recordEvaluation, setPromotionState, finalizePromotion, type FinalizePromotion } from '../src/core/promotion/store';
import type { Approval, EvaluateGatesInput, EvaluateGatesResult, PromotionStateName } from '../src/core/promotion/types';
import { nonRetryable } from './evidence';

let generator: Promise<boolean> | undefined;
/** Is a scanThenAttest workflow part of this build? Starting an unknown child type would hang. */
function generatorAvailable(): Promise<boolean> {
  return (generator ??= import('../workflows/index').then((m) => typeof (m as Record<string, unknown>).scanThenAttest === 'function').catch(() => false));
}

/**
 * Promotion activities. Short DB/blob work, run as local activities by the workflow; all
 * idempotent (upserts, state guards), so a retry or a replay after a worker crash is safe.
 */
export function createPromotionActivities(ctx: AppContext) {
  return {
    /**
     * Resolves the policy for the target environment, evaluates every gate, and records the
     * promotion row (first attempt) and each gate result for this attempt.
     */
    async evaluateGates(req: EvaluateGatesInput & { startedAt: string }): Promise<EvaluateGatesResult & { deadline: string }> {
      const t0 = performance.now();
      const { input } = req;
      try {
        const resolved = await resolvePolicy(ctx.db, input.tenant, input.toEnv);
        const { waitDeadlineMs } = policyTimings(resolved.policy);
        const imageRef = input.imageRef ?? (await lookupImageRef(ctx, input.tenant, input.artifactDigest));
        const deadline = new Date(Date.parse(req.startedAt) + waitDeadlineMs).toISOString();
        const gates = await evaluate(ctx, { tenant: input.tenant, artifactDigest: input.artifactDigest, imageRef, policy: resolved.policy });
        await recordEvaluation(ctx.db, {
          promotionId: req.promotionId,
          workflowId: req.workflowId,
          input,
          imageRef,
          policyEnv: resolved.policyEnv,
          policyVersion: resolved.version,
          deadline,
          attempt: req.attempt,
          gates,
        });
        return {
          gates,
          imageRef,
          deadline,
          policy: {
            env: resolved.policyEnv,
            version: resolved.version,
            checksum: resolved.checksum,
            autoGenerate: resolved.policy.autoGenerate,
            waitDeadlineMs,
            requireApproval: resolved.policy.requireApproval,
            approvals: resolved.policy.approvals,
          },
          generatorAvailable: resolved.policy.autoGenerate ? await generatorAvailable() : false,
          evaluationMs: performance.now() - t0,
        };
      } catch (e) {
        return nonRetryable(e);
      }
    },

    async promotionSetState(q: {
      tenant: string;
      promotionId: string;
      state: PromotionStateName;
      reason?: string | null;
      approvals?: Approval[];
    }): Promise<void> {
      await setPromotionState(ctx.db, q);
    },

    async promotionFinalize(f: FinalizePromotion): Promise<{ changed: boolean }> {
      return finalizePromotion(ctx.db, f);
    },
  };
}

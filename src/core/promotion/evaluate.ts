/**
 * One gate evaluation of a promotion, read → decide → apply: resolve the policy, gather the
 * evidence facts, decide every gate, record the attempt. The `evaluateGates` activity.
 */
import type { RootPack } from '../../crypto/rootpack';
import type { AppContext } from '../context';
import { decideGates } from './decide';
import { gatherEvidence, lookupImageRef } from './gather';
import { type PromotionPolicy, policyTimings, resolvePolicy } from './policy';
import { recordEvaluation } from './store';
import type { EvaluateGatesInput, EvaluateGatesResult, GateResult } from './types';

export interface GateContext {
  tenant: string;
  artifactDigest: string;
  imageRef: string | null;
  policy: PromotionPolicy;
  now?: Date;
  /** Trust anchor for attestation signatures; exported from ctx.keys when omitted. */
  rootPack?: RootPack;
}

/** Gathers the facts and decides every requirement of the policy (no recording). */
export async function evaluateGates(ctx: AppContext, g: GateContext): Promise<GateResult[]> {
  const now = g.now ?? new Date();
  const facts = await gatherEvidence(ctx, { ...g, now });
  return decideGates(g.policy, facts, now);
}

/**
 * Resolves the policy for the target environment, evaluates every gate, and records the
 * promotion row (first attempt) and each gate result of this attempt. Idempotent.
 */
export async function evaluatePromotion(ctx: AppContext, req: EvaluateGatesInput & { startedAt: string }): Promise<EvaluateGatesResult & { deadline: string }> {
  const t0 = performance.now();
  const { input } = req;
  // Independent lookups, side by side (a promotion's latency is mostly round trips).
  const [resolved, imageRef] = await Promise.all([
    resolvePolicy(ctx.db, input.tenant, input.toEnv),
    input.imageRef ?? lookupImageRef(ctx, input.tenant, input.artifactDigest),
  ]);
  const { waitDeadlineMs } = policyTimings(resolved.policy);
  const deadline = new Date(Date.parse(req.startedAt) + waitDeadlineMs).toISOString();
  const gates = await evaluateGates(ctx, { tenant: input.tenant, artifactDigest: input.artifactDigest, imageRef, policy: resolved.policy });
  await recordEvaluation(ctx.db, {
    promotionId: req.promotionId,
    workflowId: req.workflowId,
    input,
    imageRef,
    policyEnv: resolved.policyEnv,
    policyVersion: resolved.version,
    policyChecksum: resolved.checksum,
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
    // The promotion workflow starts scanThenAttest by reference: every worker build that runs it has the generator.
    generatorAvailable: resolved.policy.autoGenerate,
    evaluationMs: performance.now() - t0,
  };
}

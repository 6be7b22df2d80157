/** What `stella scan explain` reads from promotion (owned by promotion; used by src/core/scan/explain.ts): VEX as a gate would apply it. */
import { statementsFor, type VexFinding } from '../../../scanner/vex';
import type { AppContext } from '../../context';
import type { ConsideredEvidence } from '../types';
import { vexOf } from '../decide';
import { gatherEvidence } from '../gather';
import { DEFAULT_POLICY, resolvePolicy } from '../policy';

export type FindingVex = {
  /** The policy whose VEX signers judged the documents. */
  policy: { env: string; source: string; version: number | null };
  /** Every VEX document about the artifact, and whether the policy trusts it. */
  documents: ConsideredEvidence[];
  /** Trusted statements about this finding, oldest first; the last one decides. */
  statements: {
    evidenceId: string | null;
    signer: string | null;
    status: string;
    justification?: string;
    impactStatement?: string;
    actionStatement?: string;
    timestamp?: string;
    suppresses: boolean;
    effect: string;
  }[];
  suppressed: boolean;
};

/**
 * The VEX the vulnerability gate of `env`'s policy (the built-in default without env) would apply
 * to each finding of `artifact`, in the findings' order.
 */
export async function vexForFindings(ctx: AppContext, tenant: string, artifact: string, findings: readonly VexFinding[], env?: string): Promise<FindingVex[]> {
  const resolved = env ? await resolvePolicy(ctx.db, tenant, env) : null;
  const policy = resolved?.policy ?? DEFAULT_POLICY;
  const req = policy.requirements.find((r) => r.kind === 'scan-report') ?? DEFAULT_POLICY.requirements.find((r) => r.kind === 'scan-report');
  if (req?.kind !== 'scan-report') throw new Error('the default policy has no vulnerability requirement');
  const facts = await gatherEvidence(ctx, { tenant, artifactDigest: artifact, imageRef: null, policy: { ...policy, requirements: [req] }, now: new Date() });
  const vex = vexOf(req, facts);
  return findings.map((f) => {
    const applied = statementsFor(f, vex.statements, { digest: artifact });
    return {
      policy: { env: resolved?.policyEnv ?? 'built-in', source: resolved?.source ?? 'built-in', version: resolved?.version ?? null },
      documents: vex.considered,
      statements: applied.map((a) => ({
        evidenceId: a.statement.source?.evidenceId ?? null,
        signer: a.statement.source?.signer ?? null,
        status: a.statement.status,
        ...(a.statement.justification ? { justification: a.statement.justification } : {}),
        ...(a.statement.impactStatement ? { impactStatement: a.statement.impactStatement } : {}),
        ...(a.statement.actionStatement ? { actionStatement: a.statement.actionStatement } : {}),
        ...(a.statement.timestamp ? { timestamp: a.statement.timestamp } : {}),
        suppresses: a.suppresses,
        effect: a.effect,
      })),
      suppressed: applied[applied.length - 1]?.suppresses ?? false,
    };
  });
}

import { z } from 'zod';
import type { Finding } from '../../scanner/osv';
import { countBySeverity } from '../../scanner/osv';

/** The verdict policy a scan is judged by; pinned into the input bundle. */
export const VerdictPolicySchema = z.object({
  id: z.string().default('default'),
  /** Most findings allowed per severity; absent = unlimited. */
  maxFindings: z.partialRecord(z.enum(['critical', 'high', 'medium', 'low', 'unknown']), z.number().int().nonnegative()).default({ critical: 0 }),
  ignore: z.array(z.string()).default([]),
});
export type VerdictPolicy = z.infer<typeof VerdictPolicySchema>;

export const DEFAULT_VERDICT_POLICY: VerdictPolicy = { id: 'default', maxFindings: { critical: 0 }, ignore: [] };

export interface Verdict {
  status: 'pass' | 'fail';
  policyId: string;
  counts: Record<string, number>;
  reasons: string[];
}

export function decideVerdict(policy: VerdictPolicy, findings: readonly Finding[]): Verdict {
  const relevant = findings.filter((f) => !policy.ignore.includes(f.id) && !f.aliases.some((a) => policy.ignore.includes(a)));
  const counts = countBySeverity(relevant) as Record<string, number>;
  const reasons: string[] = [];
  for (const [sev, max] of Object.entries(policy.maxFindings)) {
    if ((counts[sev] ?? 0) > (max as number)) reasons.push(`${counts[sev]} ${sev} finding(s), policy allows ${max}`);
  }
  return { status: reasons.length ? 'fail' : 'pass', policyId: policy.id, counts, reasons };
}

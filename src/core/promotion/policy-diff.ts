/** What changed between two versions of a promotion policy: the audit entry of every policy change carries it. */

export interface PolicyChange {
  /** JSON-pointer-like path: `requireApproval`, `requirements/1/thresholds/high`. */
  path: string;
  /** Absent when the field was added. */
  from?: unknown;
  /** Absent when the field was removed. */
  to?: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Pure: the leaf-level changes from `before` to `after` (validated documents, so defaults are filled in on both sides). */
export function policyDiff(before: unknown, after: unknown, path = ''): PolicyChange[] {
  if (Array.isArray(before) && Array.isArray(after)) {
    const out: PolicyChange[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) {
      const p = path ? `${path}/${i}` : String(i);
      if (i >= before.length) out.push({ path: p, to: after[i] });
      else if (i >= after.length) out.push({ path: p, from: before[i] });
      else out.push(...policyDiff(before[i], after[i], p));
    }
    return out;
  }
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => {
      const p = path ? `${path}/${k}` : k;
      if (!(k in before)) return [{ path: p, to: after[k] }];
      if (!(k in after)) return [{ path: p, from: before[k] }];
      return policyDiff(before[k], after[k], p);
    });
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path: path || '(root)', from: before, to: after }];
}

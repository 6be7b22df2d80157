/**
 * Retention decisions, pure: given the facts about an item (age, kind, tier, subjects) and about
 * its tenant (policies, tiers, legal holds, open promotions), keep or purge it, with the reason.
 * Gathering the facts is gather.ts; applying the verdicts is purge.ts.
 */

/** Aggressive mode: a scan report superseded by a newer one for all its subjects goes after this long. */
export const SUPERSEDED_SCAN_REPORT_DAYS = 7;
export const DAY_US = 86_400_000_000;

export interface Tiers {
  hotDays: number;
  coldDays: number;
}

/** The latest declaration of one bundle type ('*' = every type without its own). */
export interface DeclaredPolicy {
  bundleType: string;
  policyId: string;
  retentionDays: number;
  legalHold: boolean;
  /** Not purged before this instant (microseconds since the epoch), or null. */
  purgeAfterUs: number | null;
}

/** What applies to one item: its kind's declaration, else the tenant-wide one, else the cold-tier default. */
export interface AppliedPolicy {
  policyId: string;
  retentionDays: number;
  legalHold: boolean;
  purgeAfterUs: number | null;
}

/** Legal hold scopes: evidence ids, subject artifacts (all their evidence), the whole tenant, evidence kinds. */
export const HOLD_SCOPES = ['items', 'artifact', 'tenant', 'bundle_type'] as const;
export type HoldScope = (typeof HOLD_SCOPES)[number];

export interface ActiveHold {
  id: string;
  scope: HoldScope;
  values: readonly string[];
}

/** What retention needs to know about one item. */
export interface RetentionItem {
  id: string;
  kind: string;
  sizeBytes: number;
  tier: string;
  createdUs: number;
  subjects: readonly string[];
}

/** What retention needs to know about the tenant at the run's instant. */
export interface RetentionFacts {
  asOfUs: number;
  tiers: Tiers;
  /** Latest declaration per bundle type (including '*'). */
  policies: ReadonlyMap<string, DeclaredPolicy>;
  holds: readonly ActiveHold[];
  /** Artifacts of open promotions: their evidence is kept. */
  protectedArtifacts: ReadonlySet<string>;
  /** Newest live scan report per artifact (aggressive mode only needs it). */
  newestScanReports: ReadonlyMap<string, { createdUs: number; id: string }>;
}

/** 'expire': purge what retention says is due; 'named': purge exactly the named items (archived). */
export type RetentionMode = { kind: 'expire'; aggressive: boolean } | { kind: 'named' };

export type KeepWhy = 'policy-hold' | 'not-before-purge-after' | 'within-retention' | 'held' | 'open-promotion';

export type Verdict =
  | { action: 'purge'; policyId: string; reason: string }
  | { action: 'keep'; policyId: string; why: KeepWhy; reason: string; holds?: string[] };

const olderThan = (item: RetentionItem, asOfUs: number, days: number) => item.createdUs < asOfUs - days * DAY_US;

/** Step 1: the policy that applies to an item's kind. */
export function policyFor(kind: string, policies: ReadonlyMap<string, DeclaredPolicy>, tiers: Tiers): AppliedPolicy {
  const p = policies.get(kind) ?? policies.get('*');
  if (p) return { policyId: p.policyId, retentionDays: p.retentionDays, legalHold: p.legalHold, purgeAfterUs: p.purgeAfterUs };
  return { policyId: 'default', retentionDays: tiers.coldDays, legalHold: false, purgeAfterUs: null };
}

/** Step 2: active legal holds covering an item (tenant-wide, by id, by bundle type, by subject artifact). */
export function holdsCovering(item: { id: string; kind: string | null; subjects: readonly string[] }, holds: readonly ActiveHold[]): string[] {
  return holds
    .filter(
      (h) =>
        h.scope === 'tenant' ||
        (h.scope === 'items' && h.values.includes(item.id)) ||
        (h.scope === 'bundle_type' && item.kind !== null && h.values.includes(item.kind)) ||
        (h.scope === 'artifact' && item.subjects.some((s) => h.values.includes(s))),
    )
    .map((h) => h.id);
}

/** Step 3: is an item evidence for an open promotion? */
export function protectedByPromotion(item: RetentionItem, protectedArtifacts: ReadonlySet<string>): boolean {
  return item.subjects.some((s) => protectedArtifacts.has(s));
}

/** A scan report older than a week whose every subject has a newer live scan report. */
export function supersededScanReport(item: RetentionItem, facts: Pick<RetentionFacts, 'asOfUs' | 'newestScanReports'>): boolean {
  if (item.kind !== 'scan-report' || !item.subjects.length || !olderThan(item, facts.asOfUs, SUPERSEDED_SCAN_REPORT_DAYS)) return false;
  return item.subjects.every((s) => {
    const n = facts.newestScanReports.get(s);
    return !!n && (n.createdUs > item.createdUs || (n.createdUs === item.createdUs && n.id > item.id));
  });
}

/**
 * Step 4: why an item is due under its policy, or null when it is not (yet). Aggressive mode
 * (storage emergency) also takes items past the hot-tier retention and superseded scan reports.
 */
export function expiry(item: RetentionItem, policy: AppliedPolicy, facts: RetentionFacts, aggressive: boolean): string | null {
  if (olderThan(item, facts.asOfUs, policy.retentionDays)) return `expired: older than ${policy.retentionDays} days (policy ${policy.policyId})`;
  if (!aggressive) return null;
  if (supersededScanReport(item, facts)) return 'aggressive: scan report superseded by a newer one';
  if (olderThan(item, facts.asOfUs, Math.min(policy.retentionDays, facts.tiers.hotDays)))
    return `aggressive: older than hot retention of ${facts.tiers.hotDays} days (policy ${policy.policyId})`;
  return null;
}

/** The decision for one item: the named steps in order (policy hold, due, legal hold, promotion). */
export function retentionDecision(item: RetentionItem, facts: RetentionFacts, mode: RetentionMode): Verdict {
  const policy = policyFor(item.kind, facts.policies, facts.tiers);
  const keep = (why: KeepWhy, reason: string, holds?: string[]): Verdict => ({
    action: 'keep',
    policyId: policy.policyId,
    why,
    reason,
    ...(holds ? { holds } : {}),
  });
  if (policy.legalHold) return keep('policy-hold', `policy ${policy.policyId} places ${item.kind} under legal hold`);
  let due: string | null = 'archived';
  if (mode.kind === 'expire') {
    if (policy.purgeAfterUs !== null && policy.purgeAfterUs > facts.asOfUs)
      return keep('not-before-purge-after', `policy ${policy.policyId} purges nothing before its purge_after`);
    due = expiry(item, policy, facts, mode.aggressive);
    if (!due) return keep('within-retention', `within retention of ${policy.retentionDays} days (policy ${policy.policyId})`);
  }
  const holds = holdsCovering(item, facts.holds);
  if (holds.length) return keep('held', `under legal hold ${holds.join(', ')}`, holds);
  if (protectedByPromotion(item, facts.protectedArtifacts)) return keep('open-promotion', 'evidence of an open promotion');
  return { action: 'purge', policyId: policy.policyId, reason: due };
}

/** Counts the run records: items due but kept by a legal hold, and due but kept for an open promotion. */
export function skippedCounts(verdicts: readonly Verdict[]): { held: number; promotion: number } {
  let held = 0;
  let promotion = 0;
  for (const v of verdicts) {
    if (v.action !== 'keep') continue;
    if (v.why === 'held') held++;
    else if (v.why === 'open-promotion') promotion++;
  }
  return { held, promotion };
}

/**
 * Items created at or after this instant cannot be due in 'expire' mode (every retention window
 * that could apply is longer), so the gather step need not read them.
 */
export function expireCutoffUs(facts: Pick<RetentionFacts, 'asOfUs' | 'tiers' | 'policies'>, aggressive: boolean): number {
  const windows = [facts.tiers.coldDays, ...[...facts.policies.values()].map((p) => p.retentionDays)];
  if (aggressive) windows.push(facts.tiers.hotDays, SUPERSEDED_SCAN_REPORT_DAYS);
  return facts.asOfUs - Math.min(...windows) * DAY_US;
}

/** Tier move: a hot item older than the hot-tier retention goes to the cold tier. */
export function tierMoveDue(item: Pick<RetentionItem, 'tier' | 'createdUs'>, tiers: Tiers, asOfUs: number): boolean {
  return item.tier === 'hot' && item.createdUs < tierMoveCutoffUs(tiers, asOfUs);
}

export function tierMoveCutoffUs(tiers: Tiers, asOfUs: number): number {
  return asOfUs - tiers.hotDays * DAY_US;
}

import { describe, expect, it } from 'vitest';
import {
  DAY_US,
  type DeclaredPolicy,
  expireCutoffUs,
  expiry,
  holdsCovering,
  policyFor,
  protectedByPromotion,
  type RetentionFacts,
  type RetentionItem,
  retentionDecision,
  skippedCounts,
  supersededScanReport,
  tierMoveDue,
} from '../src/core/retention/decide';

/** Pure retention decisions on fixture facts: no database, no servers. */
const NOW = Date.UTC(2026, 11, 1) * 1000;
const A1 = `sha256:${'a'.repeat(64)}`;
const A2 = `sha256:${'b'.repeat(64)}`;
const id = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function item(over: Partial<RetentionItem> = {}): RetentionItem {
  return { id: id(1), kind: 'sbom', sizeBytes: 64, tier: 'hot', createdUs: NOW - 40 * DAY_US, subjects: [A1], ...over };
}

function policy(over: Partial<DeclaredPolicy> = {}): DeclaredPolicy {
  return { bundleType: 'sbom', policyId: 'pol-sbom-30', retentionDays: 30, legalHold: false, purgeAfterUs: null, ...over };
}

function facts(over: Partial<RetentionFacts> = {}): RetentionFacts {
  return {
    asOfUs: NOW,
    tiers: { hotDays: 180, coldDays: 730 },
    policies: new Map([['sbom', policy()]]),
    holds: [],
    protectedArtifacts: new Set(),
    newestScanReports: new Map(),
    ...over,
  };
}

const expire = { kind: 'expire', aggressive: false } as const;
const aggressive = { kind: 'expire', aggressive: true } as const;

describe('policyFor', () => {
  it('takes the kind declaration, else the tenant-wide one, else the cold-tier default', () => {
    const tiers = { hotDays: 180, coldDays: 730 };
    const star = policy({ bundleType: '*', policyId: 'pol-all-90', retentionDays: 90 });
    expect(
      policyFor(
        'sbom',
        new Map([
          ['sbom', policy()],
          ['*', star],
        ]),
        tiers,
      ).policyId,
    ).toBe('pol-sbom-30');
    expect(
      policyFor(
        'vex',
        new Map([
          ['sbom', policy()],
          ['*', star],
        ]),
        tiers,
      ).policyId,
    ).toBe('pol-all-90');
    expect(policyFor('vex', new Map([['sbom', policy()]]), tiers)).toEqual({ policyId: 'default', retentionDays: 730, legalHold: false, purgeAfterUs: null });
  });
});

describe('holdsCovering', () => {
  const holds = [
    { id: 'h-items', scope: 'items', values: [id(1)] },
    { id: 'h-art', scope: 'artifact', values: [A2] },
    { id: 'h-kind', scope: 'bundle_type', values: ['vex'] },
  ] as const;
  it('matches by id, subject artifact and bundle type', () => {
    expect(holdsCovering(item(), holds)).toEqual(['h-items']);
    expect(holdsCovering(item({ id: id(2), subjects: [A1, A2] }), holds)).toEqual(['h-art']);
    expect(holdsCovering(item({ id: id(3), kind: 'vex' }), holds)).toEqual(['h-kind']);
    expect(holdsCovering(item({ id: id(4) }), holds)).toEqual([]);
  });
  it('a tenant hold covers everything, even an item not indexed yet', () => {
    expect(holdsCovering({ id: id(9), kind: null, subjects: [] }, [{ id: 'h-t', scope: 'tenant', values: [] }])).toEqual(['h-t']);
  });
});

describe('protectedByPromotion', () => {
  it('protects evidence of an open promotion artifact', () => {
    expect(protectedByPromotion(item(), new Set([A1]))).toBe(true);
    expect(protectedByPromotion(item(), new Set([A2]))).toBe(false);
  });
});

describe('expiry', () => {
  it('expires past the policy days, keeps within', () => {
    const f = facts();
    expect(expiry(item(), policyFor('sbom', f.policies, f.tiers), f, false)).toBe('expired: older than 30 days (policy pol-sbom-30)');
    expect(expiry(item({ createdUs: NOW - 29 * DAY_US }), policyFor('sbom', f.policies, f.tiers), f, false)).toBeNull();
  });
  it('aggressive mode also takes items past hot retention', () => {
    const f = facts();
    const p = policyFor('attestation', f.policies, f.tiers);
    const old = item({ kind: 'attestation', createdUs: NOW - 200 * DAY_US });
    expect(expiry(old, p, f, false)).toBeNull();
    expect(expiry(old, p, f, true)).toBe('aggressive: older than hot retention of 180 days (policy default)');
  });
});

describe('supersededScanReport', () => {
  const report = item({ id: id(5), kind: 'scan-report', createdUs: NOW - 10 * DAY_US, subjects: [A1, A2] });
  const newer = { createdUs: NOW - DAY_US, id: id(6) };
  it('needs a newer scan report for every subject, and an age of a week', () => {
    expect(
      supersededScanReport(report, {
        asOfUs: NOW,
        newestScanReports: new Map([
          [A1, newer],
          [A2, newer],
        ]),
      }),
    ).toBe(true);
    expect(supersededScanReport(report, { asOfUs: NOW, newestScanReports: new Map([[A1, newer]]) })).toBe(false);
    expect(
      supersededScanReport(report, {
        asOfUs: NOW,
        newestScanReports: new Map([
          [A1, newer],
          [A2, { createdUs: report.createdUs, id: report.id }],
        ]),
      }),
    ).toBe(false);
    const young = { ...report, createdUs: NOW - 3 * DAY_US };
    expect(
      supersededScanReport(young, {
        asOfUs: NOW,
        newestScanReports: new Map([
          [A1, newer],
          [A2, newer],
        ]),
      }),
    ).toBe(false);
  });
  it('breaks a same-instant tie by id', () => {
    const tie = { createdUs: report.createdUs, id: id(7) };
    expect(
      supersededScanReport(report, {
        asOfUs: NOW,
        newestScanReports: new Map([
          [A1, tie],
          [A2, tie],
        ]),
      }),
    ).toBe(true);
  });
});

describe('retentionDecision', () => {
  it('purges an expired item with the policy and reason', () => {
    expect(retentionDecision(item(), facts(), expire)).toEqual({
      action: 'purge',
      policyId: 'pol-sbom-30',
      reason: 'expired: older than 30 days (policy pol-sbom-30)',
    });
  });
  it('keeps, in order: policy hold, purge_after, within retention, legal hold, open promotion', () => {
    const why = (i: RetentionItem, f: RetentionFacts, mode = expire as Parameters<typeof retentionDecision>[2]) => {
      const v = retentionDecision(i, f, mode);
      return v.action === 'keep' ? v.why : v.action;
    };
    const held = [{ id: 'h1', scope: 'items' as const, values: [id(1)] }];
    expect(why(item(), facts({ policies: new Map([['sbom', policy({ legalHold: true })]]), holds: held }))).toBe('policy-hold');
    expect(why(item(), facts({ policies: new Map([['sbom', policy({ purgeAfterUs: NOW + DAY_US })]]) }))).toBe('not-before-purge-after');
    expect(why(item(), facts({ policies: new Map([['sbom', policy({ purgeAfterUs: NOW - DAY_US })]]) }))).toBe('purge');
    expect(why(item({ createdUs: NOW - DAY_US }), facts({ holds: held }))).toBe('within-retention');
    expect(why(item(), facts({ holds: held, protectedArtifacts: new Set([A1]) }))).toBe('held');
    expect(why(item(), facts({ protectedArtifacts: new Set([A1]) }))).toBe('open-promotion');
  });
  it('named mode (archive-delete) ignores age but still respects holds and promotions', () => {
    const young = item({ createdUs: NOW - DAY_US });
    expect(retentionDecision(young, facts(), { kind: 'named' })).toMatchObject({ action: 'purge', reason: 'archived' });
    expect(retentionDecision(young, facts({ holds: [{ id: 'h', scope: 'tenant', values: [] }] }), { kind: 'named' })).toMatchObject({
      action: 'keep',
      why: 'held',
      holds: ['h'],
    });
    expect(retentionDecision(young, facts({ policies: new Map([['sbom', policy({ legalHold: true })]]) }), { kind: 'named' })).toMatchObject({
      why: 'policy-hold',
    });
  });
  it('aggressive mode purges a superseded scan report with its own reason', () => {
    const report = item({ id: id(5), kind: 'scan-report', createdUs: NOW - 10 * DAY_US });
    const f = facts({ newestScanReports: new Map([[A1, { createdUs: NOW, id: id(6) }]]) });
    expect(retentionDecision(report, f, expire)).toMatchObject({ action: 'keep', why: 'within-retention' });
    expect(retentionDecision(report, f, aggressive)).toMatchObject({ action: 'purge', reason: 'aggressive: scan report superseded by a newer one' });
  });
});

describe('run bookkeeping', () => {
  it('counts only due items kept by a hold or a promotion as skipped', () => {
    const f = facts({ holds: [{ id: 'h', scope: 'items', values: [id(2)] }], protectedArtifacts: new Set([A2]) });
    const items = [item(), item({ id: id(2) }), item({ id: id(3), subjects: [A2] }), item({ id: id(4), createdUs: NOW }), item({ id: id(5), subjects: [A2] })];
    expect(skippedCounts(items.map((i) => retentionDecision(i, f, expire)))).toEqual({ held: 1, promotion: 2 });
  });
  it('the expire cutoff is the shortest window that could apply', () => {
    const f = facts();
    expect(expireCutoffUs(f, false)).toBe(NOW - 30 * DAY_US);
    expect(expireCutoffUs(facts({ policies: new Map() }), false)).toBe(NOW - 730 * DAY_US);
    expect(expireCutoffUs(facts({ policies: new Map() }), true)).toBe(NOW - 7 * DAY_US);
  });
  it('tier move: hot items past hot retention', () => {
    const tiers = { hotDays: 60, coldDays: 730 };
    expect(tierMoveDue({ tier: 'hot', createdUs: NOW - 70 * DAY_US }, tiers, NOW)).toBe(true);
    expect(tierMoveDue({ tier: 'hot', createdUs: NOW - 10 * DAY_US }, tiers, NOW)).toBe(false);
    expect(tierMoveDue({ tier: 'cold', createdUs: NOW - 70 * DAY_US }, tiers, NOW)).toBe(false);
  });
});

/** Reads the facts retention decides on (decide.ts): tenant facts once per batch, item facts page by page. */
import type { Queryable } from '../evidence/state';
import { expiredItemPage, liveItemPage, newestScanReports } from '../evidence/queries/retention';
import { openPromotionArtifacts } from '../promotion/queries/retention';
import { declaredPolicies, getTiers } from './policy';
import { activeHolds } from './holds';
import { expireCutoffUs, type RetentionFacts, type RetentionItem, type RetentionMode } from './decide';
import type { RunRecord } from './runs';

/**
 * The tenant's facts at the run's instant: policies, tiers, active holds, and the artifacts of open
 * promotions (those recorded when the run started, plus the ones open now).
 */
export async function gatherTenantFacts(q: Queryable, run: RunRecord): Promise<RetentionFacts> {
  const [tiers, policies, holds, open] = [
    await getTiers(q, run.tenant),
    await declaredPolicies(q, run.tenant),
    await activeHolds(q, run.tenant),
    await openPromotionArtifacts(q, run.tenant),
  ];
  return {
    asOfUs: run.asOfUs,
    tiers: { hotDays: tiers.hotDays, coldDays: tiers.coldDays },
    policies,
    holds,
    protectedArtifacts: new Set([...run.protectedArtifacts, ...open]),
    newestScanReports: new Map(),
  };
}

/**
 * Where a walk over candidates stands, after `item`: expiry mode walks oldest first
 * (`<created microseconds> <id>`), named ids in id order (the id). '' is the start.
 */
export function pageCursor(mode: RetentionMode, item: Pick<RetentionItem, 'createdUs' | 'id'>): string {
  return mode.kind === 'expire' ? `${item.createdUs} ${item.id}` : item.id;
}

function parseExpiryCursor(c: string): { createdUs: number; id: string } | null {
  if (!c) return null;
  const [us, id] = c.split(' ');
  return { createdUs: Number(us), id: id ?? '' };
}

/**
 * One page of candidate items after the cursor `after` (pageCursor) with the per-page facts they
 * need. Expiry mode reads only items old enough to be due, oldest first, by keyset over an index
 * (a page costs the same at any tenant size); named ids go in id order. In aggressive mode, also
 * the newest scan report of each subject of the page's scan reports.
 */
export async function gatherItemPage(
  q: Queryable,
  tenant: string,
  facts: RetentionFacts,
  mode: RetentionMode,
  page: { after: string; limit: number; ids?: readonly string[] },
): Promise<{ items: RetentionItem[]; facts: RetentionFacts }> {
  const items =
    mode.kind === 'expire'
      ? await expiredItemPage(q, tenant, { after: parseExpiryCursor(page.after), limit: page.limit, createdBeforeUs: expireCutoffUs(facts, mode.aggressive) })
      : await liveItemPage(q, tenant, { after: page.after, limit: page.limit, ids: page.ids ?? null });
  if (mode.kind !== 'expire' || !mode.aggressive) return { items, facts };
  const subjects = [...new Set(items.filter((i) => i.kind === 'scan-report').flatMap((i) => i.subjects))];
  return { items, facts: { ...facts, newestScanReports: await newestScanReports(q, tenant, subjects) } };
}

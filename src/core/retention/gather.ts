/** Reads the facts retention decides on (decide.ts): tenant facts once per batch, item facts page by page. */
import type { Queryable } from '../evidence/state';
import { liveItemPage, newestScanReports } from '../evidence/queries/retention';
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
 * One page of candidate items (id order after `after`) with the per-page facts they need: items
 * too young to be due are not read at all; in aggressive mode, the newest scan report of each
 * subject of the page's scan reports.
 */
export async function gatherItemPage(
  q: Queryable,
  tenant: string,
  facts: RetentionFacts,
  mode: RetentionMode,
  page: { after: string; limit: number; ids?: readonly string[] },
): Promise<{ items: RetentionItem[]; facts: RetentionFacts }> {
  const createdBeforeUs = mode.kind === 'expire' ? expireCutoffUs(facts, mode.aggressive) : null;
  const items = await liveItemPage(q, tenant, { after: page.after, limit: page.limit, createdBeforeUs, ids: page.ids ?? null });
  if (mode.kind !== 'expire' || !mode.aggressive) return { items, facts };
  const subjects = [...new Set(items.filter((i) => i.kind === 'scan-report').flatMap((i) => i.subjects))];
  return { items, facts: { ...facts, newestScanReports: await newestScanReports(q, tenant, subjects) } };
}

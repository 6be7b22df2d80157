/** HTTP routes of per-ecosystem feed state and `stella scan explain`: parse (src/contracts) → call core → reply. `POST /feeds/sync` is a raw-body route in scan.ts. */
import { explainFinding } from '../../core/scan/explain';
import { feedEcosystems } from '../../core/scan/feeds-sync';
import { FeedEcosystems, ScanExplainQuery, ScanExplanation } from '../../contracts/scan-feeds';
import { requireScope, tenantOf, type ApiDeps } from '../deps';
import type { App } from './evidence';

export function scanFeedRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/feeds/ecosystems', { schema: { response: { 200: FeedEcosystems } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await feedEcosystems(ctx, tenantOf(req)) };
  });
  app.get('/scans/explain', { schema: { querystring: ScanExplainQuery, response: { 200: ScanExplanation } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const { artifact, finding, package: pkg, env } = req.query;
    return explainFinding(ctx, tenantOf(req), { artifact, finding, ...(pkg ? { package: pkg } : {}), ...(env ? { env } : {}) });
  });
}

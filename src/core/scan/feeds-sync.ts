/**
 * `stella feeds sync`: the CLI reads an OSV mirror and verifies its checksum manifest
 * (src/scanner/osv-mirror.ts), then uploads the records grouped by ecosystem. Here the synced
 * ecosystems replace their records in the newest feed (records of other ecosystems are kept),
 * the result is imported as a feed version (idempotent by digest), and each ecosystem records
 * when its content last changed and when a sync last confirmed it (the freshness gauge).
 */
import { z } from 'zod';
import { withTransaction } from '../../db/pool';
import { canonicalJson } from '../../lib/canonical';
import { badInput } from '../../lib/errors';
import { sha256Digest } from '../../lib/hash';
import { formatZodError } from '../../lib/zod';
import type { OsvRecord } from '../../scanner/osv';
import { audit } from '../audit';
import type { AppContext } from '../context';
import { type FeedVersion, importRecords, latestFeed, loadFeedSnapshot } from './feeds';

export const FeedSyncUpload = z.strictObject({
  source: z.string().min(1).max(1024),
  manifestSha256: z.string().regex(/^[0-9a-f]{64}$/),
  ecosystems: z
    .array(z.strictObject({ name: z.string().min(1).max(100), records: z.array(z.looseObject({ id: z.string().min(1) })) }))
    .min(1)
    .max(1000),
});

export type EcosystemSync = {
  ecosystem: string;
  records: number;
  digest: string;
  /** The content differs from the last import of this ecosystem. */
  changed: boolean;
  importedAt: string;
  syncedAt: string;
};

export type FeedSyncResult = {
  feed: FeedVersion & { created: boolean };
  ecosystems: EcosystemSync[];
  /** Records of other ecosystems carried over from the previous feed version. */
  kept: number;
};

const baseOf = (eco: string) => (eco.includes(':') ? eco.slice(0, eco.indexOf(':')) : eco).toLowerCase();
const ecosystemsOf = (r: OsvRecord) =>
  new Set(
    (r.affected ?? [])
      .map((a) => a.package?.ecosystem)
      .filter((e): e is string => !!e)
      .map(baseOf),
  );
const digestOf = (records: readonly unknown[]) => sha256Digest(canonicalJson([...records].sort((a, b) => cmp((a as OsvRecord).id, (b as OsvRecord).id))));
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export async function syncFeed(ctx: AppContext, tenant: string, body: Buffer, actor: string): Promise<FeedSyncResult> {
  let parsed: z.infer<typeof FeedSyncUpload>;
  try {
    const r = FeedSyncUpload.safeParse(JSON.parse(body.toString('utf8')));
    if (!r.success) throw badInput(`feed sync upload is invalid: ${formatZodError(r.error, 'body')}; nothing imported`);
    parsed = r.data;
  } catch (e) {
    if (e instanceof SyntaxError) throw badInput('feed sync upload is not valid JSON; nothing imported');
    throw e;
  }
  const names = parsed.ecosystems.map((e) => e.name);
  if (new Set(names.map((n) => n.toLowerCase())).size !== names.length) throw badInput('feed sync upload names an ecosystem twice; nothing imported');
  const synced = new Set(names.map(baseOf));
  // The newest feed's records of other ecosystems stay; the synced ecosystems are replaced.
  const prev = await latestFeed(ctx, tenant);
  const kept = prev ? (await loadFeedSnapshot(ctx, prev.digest)).records.filter((r) => ![...ecosystemsOf(r)].some((e) => synced.has(e))) : [];
  const incoming = parsed.ecosystems.flatMap((e) => e.records);
  const feed = await importRecords(ctx, tenant, [...kept, ...incoming], { source: parsed.source, actor });
  const now = new Date();
  const ecosystems = await withTransaction(ctx.db, async (tx) => {
    const out: EcosystemSync[] = [];
    for (const e of parsed.ecosystems) {
      const digest = digestOf(e.records);
      const r = await tx.query(
        `INSERT INTO advisory_feed_ecosystems AS a (tenant_id, ecosystem, record_count, digest, feed_version, source, imported_at, synced_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         ON CONFLICT (tenant_id, ecosystem) DO UPDATE SET
           imported_at = CASE WHEN a.digest = EXCLUDED.digest THEN a.imported_at ELSE EXCLUDED.imported_at END,
           feed_version = CASE WHEN a.digest = EXCLUDED.digest THEN a.feed_version ELSE EXCLUDED.feed_version END,
           record_count = EXCLUDED.record_count, digest = EXCLUDED.digest, source = EXCLUDED.source, synced_at = EXCLUDED.synced_at
         RETURNING imported_at, synced_at, (imported_at = synced_at) AS changed`,
        [tenant, e.name, e.records.length, digest, feed.version, parsed.source, now],
      );
      const row = r.rows[0];
      out.push({
        ecosystem: e.name,
        records: e.records.length,
        digest,
        changed: !!row.changed,
        importedAt: new Date(row.imported_at).toISOString(),
        syncedAt: new Date(row.synced_at).toISOString(),
      });
    }
    return out;
  });
  await audit(ctx.db, {
    tenant,
    actor,
    action: 'scan.feed.sync',
    target: feed.digest,
    details: { version: feed.version, created: feed.created, source: parsed.source, manifest: parsed.manifestSha256, ecosystems: names },
  });
  return { feed, ecosystems, kept: kept.length };
}

/** Per-ecosystem feed state, by ecosystem name. */
export async function feedEcosystems(
  ctx: Pick<AppContext, 'db'>,
  tenant: string,
): Promise<(EcosystemSync & { feedVersion: number; source: string | null; ageSeconds: number })[]> {
  const r = await ctx.db.query(
    'SELECT *, extract(epoch FROM now() - synced_at)::float AS age FROM advisory_feed_ecosystems WHERE tenant_id=$1 ORDER BY ecosystem',
    [tenant],
  );
  return r.rows.map((x) => ({
    ecosystem: x.ecosystem,
    records: x.record_count,
    digest: x.digest,
    changed: false,
    importedAt: new Date(x.imported_at).toISOString(),
    syncedAt: new Date(x.synced_at).toISOString(),
    feedVersion: x.feed_version,
    source: x.source,
    ageSeconds: Math.max(0, Math.round(Number(x.age))),
  }));
}

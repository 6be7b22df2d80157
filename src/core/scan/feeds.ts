import type { AppContext } from '../context';
import { audit } from '../audit';
import { withTransaction } from '../../db/pool';
import { badInput, integrity, notFound } from '../../lib/errors';
import { feedFromRecords, type Feed } from '../../scanner/osv';
import { toStellaError } from './engine';
import { canonicalJson as canonical } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';

/**
 * Versioned advisory feeds. A feed version is a snapshot: the canonical JSON array of its
 * OSV records, whose sha256 is the feed digest (the scanner's definition), stored in the
 * blob store under the `feeds` prefix. Scan runs record (version, digest), and a replay
 * loads the exact snapshot by digest.
 */

export type FeedVersion = {
  version: number;
  digest: string;
  records: number;
  ecosystems: string[];
  size: number;
  source: string | null;
  importedAt: string;
  importedBy: string | null;
};

export const feedStore = (ctx: AppContext) => ctx.blobs.primary.withPrefix('feeds');

interface FeedRow {
  version: number;
  digest: string;
  record_count: number;
  ecosystems: string[];
  size_bytes: string | number;
  source: string | null;
  imported_at: Date | string;
  imported_by: string | null;
}

function row(r: FeedRow): FeedVersion {
  return {
    version: r.version,
    digest: r.digest,
    records: r.record_count,
    ecosystems: r.ecosystems,
    size: Number(r.size_bytes),
    source: r.source,
    importedAt: new Date(r.imported_at).toISOString(),
    importedBy: r.imported_by,
  };
}

/** The snapshot bytes of a feed: exactly what its digest covers. */
export function feedSnapshotBytes(feed: Feed): Buffer {
  return Buffer.from(`[${feed.records.map((r) => canonical(r)).join(',')}]`, 'utf8');
}
/**
 * Import OSV records (a JSON array, as the CLI uploads after reading a dir/zip with the
 * scanner's loadFeed). Idempotent by digest: the same set of records is the same version.
 */
export async function importFeed(
  ctx: AppContext,
  tenant: string,
  body: Buffer,
  opts: { source?: string; actor: string },
): Promise<FeedVersion & { created: boolean }> {
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    throw badInput('feed upload is not valid JSON (expected an array of OSV records)');
  }
  if (!Array.isArray(raw)) throw badInput('feed upload must be a JSON array of OSV records');
  return importRecords(ctx, tenant, raw, opts);
}

/** Import a set of OSV records as a feed version (the same set is the same version). */
export async function importRecords(
  ctx: AppContext,
  tenant: string,
  raw: readonly unknown[],
  opts: { source?: string; actor: string },
): Promise<FeedVersion & { created: boolean }> {
  let feed: Feed;
  try {
    feed = feedFromRecords(raw, opts.source ?? 'upload');
  } catch (e) {
    throw toStellaError(e, 'feed');
  }
  if (feed.count === 0) throw badInput('feed holds no OSV records; nothing imported');
  const existing = await ctx.db.query<FeedRow>('SELECT * FROM advisory_feeds WHERE tenant_id=$1 AND digest=$2', [tenant, feed.digest]);
  if (existing.rows[0]) return { ...row(existing.rows[0]), created: false };
  const bytes = feedSnapshotBytes(feed);
  if (sha256Digest(bytes) !== feed.digest) throw integrity('feed snapshot does not hash to the feed digest (scanner/canonical mismatch)');
  // Blob first: a crash before the row leaves an orphan snapshot, never a row without one.
  await feedStore(ctx).put(feed.digest, bytes);
  const r = await withTransaction(ctx.db, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`feeds:${tenant}`]);
    const again = await tx.query<FeedRow>('SELECT * FROM advisory_feeds WHERE tenant_id=$1 AND digest=$2', [tenant, feed.digest]);
    if (again.rows[0]) return { rec: again.rows[0], created: false };
    const ins = await tx.query<FeedRow>(
      `INSERT INTO advisory_feeds (tenant_id, version, digest, record_count, ecosystems, size_bytes, source, imported_by)
       VALUES ($1, COALESCE((SELECT max(version) FROM advisory_feeds WHERE tenant_id=$1), 0) + 1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [tenant, feed.digest, feed.count, JSON.stringify(feed.ecosystems), bytes.length, opts.source ?? null, opts.actor],
    );
    return { rec: ins.rows[0]!, created: true };
  });
  if (r.created)
    await audit(ctx.db, {
      tenant,
      actor: opts.actor,
      action: 'scan.feed.import',
      target: feed.digest,
      details: { version: r.rec.version, records: feed.count, source: opts.source ?? null },
    });
  return { ...row(r.rec), created: r.created };
}

export async function listFeeds(ctx: AppContext, tenant: string): Promise<FeedVersion[]> {
  const r = await ctx.db.query<FeedRow>('SELECT * FROM advisory_feeds WHERE tenant_id=$1 ORDER BY version DESC', [tenant]);
  return r.rows.map(row);
}

export async function latestFeed(ctx: AppContext, tenant: string): Promise<FeedVersion | null> {
  const r = await ctx.db.query<FeedRow>('SELECT * FROM advisory_feeds WHERE tenant_id=$1 ORDER BY version DESC LIMIT 1', [tenant]);
  return r.rows[0] ? row(r.rows[0]) : null;
}

/** The feed version a digest was imported as, if this tenant imported it. */
export async function feedByDigest(ctx: Pick<AppContext, 'db'>, tenant: string, digest: string): Promise<FeedVersion | null> {
  const r = await ctx.db.query<FeedRow>('SELECT * FROM advisory_feeds WHERE tenant_id=$1 AND digest=$2', [tenant, digest]);
  return r.rows[0] ? row(r.rows[0]) : null;
}

export async function getFeed(ctx: AppContext, tenant: string, version: number): Promise<FeedVersion> {
  const r = await ctx.db.query<FeedRow>('SELECT * FROM advisory_feeds WHERE tenant_id=$1 AND version=$2', [tenant, version]);
  if (!r.rows[0]) throw notFound(`feed version ${version} not found`);
  return row(r.rows[0]);
}

// Feeds can be large and every scan of a batch uses the same one: keep the last parsed one.
let cached: { digest: string; feed: Feed } | undefined;

/** Load a pinned feed snapshot by digest from the blob store (verified on read). */
export async function loadFeedSnapshot(ctx: AppContext, digest: string): Promise<Feed> {
  if (cached?.digest === digest) return cached.feed;
  let bytes: Buffer;
  try {
    bytes = await feedStore(ctx).getBuffer(digest);
  } catch (e) {
    if ((e as { code?: string }).code === 'BLOB_NOT_FOUND') throw integrity(`feed snapshot ${digest} is missing from the blob store`);
    if ((e as { code?: string }).code === 'DIGEST_MISMATCH') throw integrity(`feed snapshot ${digest} failed its integrity check`);
    throw e;
  }
  const feed = feedFromRecords(JSON.parse(bytes.toString('utf8')) as unknown[], `feed ${digest}`);
  if (feed.digest !== digest) throw integrity(`feed snapshot ${digest} re-hashes to ${feed.digest}`);
  cached = { digest, feed };
  return feed;
}

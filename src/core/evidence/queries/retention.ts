/** What retention reads and changes in the evidence index (owned by evidence; used by src/core/retention). */
import type { Queryable } from '../state';

/** Microseconds since the epoch, exact (PostgreSQL timestamps have microsecond precision). */
const US = (col: string) => `(extract(epoch FROM ${col}) * 1000000)::bigint`;

/** The facts retention decides on, for one live (present or corrupted) item. */
export interface ItemFacts {
  id: string;
  kind: string;
  sizeBytes: number;
  tier: string;
  /** Creation time in microseconds since the epoch. */
  createdUs: number;
  /** Subject artifact digests, sorted. */
  subjects: string[];
}

function toFacts(row: Record<string, unknown>): ItemFacts {
  return {
    id: row.id as string,
    kind: row.kind as string,
    sizeBytes: Number(row.size_bytes),
    tier: row.tier as string,
    createdUs: Number(row.created_us),
    subjects: (row.subjects as string[] | null) ?? [],
  };
}

/**
 * One page (id order, ids > `after`) of a tenant's live items with their subjects. `createdBeforeUs`
 * narrows to items created before that instant; `ids` narrows to the named items.
 */
export async function liveItemPage(
  q: Queryable,
  tenant: string,
  page: { after: string; limit: number; createdBeforeUs?: number | null; ids?: readonly string[] | null },
): Promise<ItemFacts[]> {
  const r = await q.query(
    `SELECT i.id, i.kind, i.size_bytes, i.tier, ${US('i.created_at')} AS created_us,
            (SELECT array_agg(s.artifact_digest ORDER BY s.artifact_digest) FROM evidence_subjects s WHERE s.tenant_id = i.tenant_id AND s.item_id = i.id) AS subjects
       FROM evidence_items i
      WHERE i.tenant_id = $1 AND i.state IN ('present', 'corrupted') AND i.id > $2
        AND ($4::bigint IS NULL OR ${US('i.created_at')} < $4::bigint)
        AND ($5::text[] IS NULL OR i.id = ANY ($5::text[]))
      ORDER BY i.id LIMIT $3`,
    [tenant, page.after, page.limit, page.createdBeforeUs ?? null, page.ids ?? null],
  );
  return r.rows.map(toFacts);
}

/**
 * One page of a tenant's live items created before `createdBeforeUs`, oldest first: keyset over
 * (created_at, id) after `after` (null: from the oldest), on the index of migration 101, so a page
 * costs the same at any tenant size.
 */
export async function expiredItemPage(
  q: Queryable,
  tenant: string,
  page: { after: { createdUs: number; id: string } | null; limit: number; createdBeforeUs: number },
): Promise<ItemFacts[]> {
  const at = (p: string) => `('epoch'::timestamptz + ${p}::bigint * interval '1 microsecond')`;
  const r = await q.query(
    `SELECT i.id, i.kind, i.size_bytes, i.tier, ${US('i.created_at')} AS created_us,
            (SELECT array_agg(s.artifact_digest ORDER BY s.artifact_digest) FROM evidence_subjects s WHERE s.tenant_id = i.tenant_id AND s.item_id = i.id) AS subjects
       FROM evidence_items i
      WHERE i.tenant_id = $1 AND i.state IN ('present', 'corrupted')
        AND (i.created_at, i.id) > (coalesce(${at('$2')}, '-infinity'::timestamptz), $3)
        AND i.created_at < ${at('$5')}
      ORDER BY i.created_at, i.id LIMIT $4`,
    [tenant, page.after?.createdUs ?? null, page.after?.id ?? '', page.limit, page.createdBeforeUs],
  );
  return r.rows.map(toFacts);
}

/** Kind and subjects of one item of a tenant (any state), or null when it is not indexed. */
export async function itemHoldFacts(q: Queryable, tenant: string, id: string): Promise<{ id: string; kind: string; subjects: string[] } | null> {
  const r = await q.query(
    `SELECT i.id, i.kind, (SELECT array_agg(s.artifact_digest ORDER BY s.artifact_digest) FROM evidence_subjects s WHERE s.tenant_id = i.tenant_id AND s.item_id = i.id) AS subjects
       FROM evidence_items i WHERE i.tenant_id = $1 AND i.id = $2`,
    [tenant, id],
  );
  if (!r.rowCount) return null;
  return { id: r.rows[0].id, kind: r.rows[0].kind, subjects: r.rows[0].subjects ?? [] };
}

/**
 * For each artifact, its newest scan report that is not purged: (created microseconds, id), the
 * order in which "newer" is judged.
 */
export async function newestScanReports(q: Queryable, tenant: string, artifacts: readonly string[]): Promise<Map<string, { createdUs: number; id: string }>> {
  if (!artifacts.length) return new Map();
  const r = await q.query(
    `SELECT DISTINCT ON (s.artifact_digest) s.artifact_digest, j.id, ${US('j.created_at')} AS created_us
       FROM evidence_subjects s JOIN evidence_items j ON j.tenant_id = s.tenant_id AND j.id = s.item_id
      WHERE s.tenant_id = $1 AND s.artifact_digest = ANY ($2::text[]) AND j.kind = 'scan-report' AND j.state <> 'purged'
      ORDER BY s.artifact_digest, j.created_at DESC, j.id DESC`,
    [tenant, artifacts],
  );
  return new Map(r.rows.map((x) => [x.artifact_digest as string, { createdUs: Number(x.created_us), id: x.id as string }]));
}

/** Tiers in which other tenants hold a live (not purged) copy of each of these blobs. */
export async function otherTenantLiveTiers(q: Queryable, tenant: string, ids: readonly string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  if (!ids.length) return out;
  const r = await q.query(`SELECT DISTINCT id, tier FROM evidence_items WHERE id = ANY ($2::text[]) AND tenant_id <> $1 AND state <> 'purged'`, [tenant, ids]);
  for (const x of r.rows) {
    const s = out.get(x.id) ?? new Set<string>();
    s.add(x.tier);
    out.set(x.id, s);
  }
  return out;
}

/** Live hot items of a tenant created before the cutoff, one page in id order after `after`. */
export async function hotItemsBefore(q: Queryable, tenant: string, page: { beforeUs: number; after: string; limit: number }): Promise<ItemFacts[]> {
  const r = await q.query(
    `SELECT i.id, i.kind, i.size_bytes, i.tier, ${US('i.created_at')} AS created_us, NULL::text[] AS subjects
       FROM evidence_items i
      WHERE i.tenant_id = $1 AND i.state = 'present' AND i.tier = 'hot' AND ${US('i.created_at')} < $2::bigint AND i.id > $3
      ORDER BY i.id LIMIT $4`,
    [tenant, page.beforeUs, page.after, page.limit],
  );
  return r.rows.map(toFacts);
}

/**
 * The one place an item's tier changes outside a revival: hot -> cold for present items of a
 * tenant; returns the items that moved (with kind and size, for the run record).
 */
export async function moveToColdTier(q: Queryable, tenant: string, ids: readonly string[]): Promise<{ id: string; kind: string; sizeBytes: number }[]> {
  if (!ids.length) return [];
  const r = await q.query(
    `UPDATE evidence_items SET tier = 'cold' WHERE tenant_id = $1 AND id = ANY ($2::text[]) AND tier = 'hot' AND state = 'present' RETURNING id, kind, size_bytes`,
    [tenant, ids],
  );
  return r.rows.map((x) => ({ id: x.id as string, kind: x.kind as string, sizeBytes: Number(x.size_bytes) }));
}

/** Which of the named items of a tenant are not purged, in id order. */
export async function notPurged(q: Queryable, tenant: string, ids: readonly string[]): Promise<string[]> {
  const r = await q.query(`SELECT id FROM evidence_items WHERE tenant_id = $1 AND id = ANY ($2::text[]) AND state <> 'purged' ORDER BY id`, [tenant, ids]);
  return r.rows.map((x) => x.id as string);
}

/** Archive scope: present items older than N days, optionally without replay bundles. */
function archiveScope(includeReplay: boolean): string {
  return `i.tenant_id = $1 AND i.state = 'present' AND i.created_at < now() - make_interval(days => $2::int) ${includeReplay ? '' : `AND i.kind <> 'replay-bundle'`}`;
}

/** Count and bytes of the items an archive of age `olderThanDays` holds, and how many replay bundles it leaves out. */
export async function archiveScopeStats(
  q: Queryable,
  tenant: string,
  olderThanDays: number,
  includeReplay: boolean,
): Promise<{ items: number; bytes: number; replayBundles: number }> {
  const r = await q.query(
    `SELECT count(*) FILTER (WHERE ${includeReplay ? 'true' : `i.kind <> 'replay-bundle'`})::int AS n,
            coalesce(sum(i.size_bytes) FILTER (WHERE ${includeReplay ? 'true' : `i.kind <> 'replay-bundle'`}), 0)::bigint AS bytes,
            count(*) FILTER (WHERE i.kind = 'replay-bundle')::int AS replay
       FROM evidence_items i WHERE ${archiveScope(true)}`,
    [tenant, olderThanDays],
  );
  return { items: r.rows[0].n, bytes: Number(r.rows[0].bytes), replayBundles: r.rows[0].replay };
}

export interface ArchiveRow {
  id: string;
  kind: string;
  mediaType: string;
  sizeBytes: number;
  tier: string;
  createdAt: string;
  subjects: string[];
}

/** One page (id order) of the items an archive holds, with their subjects. */
export async function archivePage(
  q: Queryable,
  tenant: string,
  page: { olderThanDays: number; includeReplay: boolean; after: string; limit: number },
): Promise<ArchiveRow[]> {
  const r = await q.query(
    `SELECT i.id, i.kind, i.media_type, i.size_bytes, i.tier, i.created_at,
            (SELECT array_agg(s.artifact_digest ORDER BY s.artifact_digest) FROM evidence_subjects s WHERE s.tenant_id = i.tenant_id AND s.item_id = i.id) AS subjects
       FROM evidence_items i WHERE ${archiveScope(page.includeReplay)} AND i.id > $3 ORDER BY i.id LIMIT $4`,
    [tenant, page.olderThanDays, page.after, page.limit],
  );
  return r.rows.map((x) => ({
    id: x.id,
    kind: x.kind,
    mediaType: x.media_type,
    sizeBytes: Number(x.size_bytes),
    tier: x.tier,
    createdAt: new Date(x.created_at).toISOString(),
    subjects: x.subjects ?? [],
  }));
}

/** Tenants known to the locker: registered ones and any that has evidence. */
export async function knownTenants(q: Queryable): Promise<string[]> {
  const r = await q.query(`SELECT id FROM tenants UNION SELECT DISTINCT tenant_id FROM evidence_items ORDER BY 1`);
  return r.rows.map((x) => x.id as string);
}

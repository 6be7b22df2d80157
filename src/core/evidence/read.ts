/** Reading the evidence index: one item (head or full), a page of items, and an item's bytes. */
import type { Readable } from 'node:stream';
import type { BlobStores } from '../../blob';
import { BlobNotFoundError } from '../../blob';
import type { Db } from '../../db/pool';
import { badInput, integrity, notFound } from '../../lib/errors';
import { type EvidenceHead, type EvidenceItem, type EvidenceKind, type ProvenanceKind, validateDigest, validateKind } from './model';

interface ItemRow {
  tenant_id: string;
  id: string;
  media_type: string;
  kind: EvidenceKind;
  predicate_type: string | null;
  size_bytes: number;
  producer: Record<string, unknown>;
  labels: Record<string, string>;
  tier: string;
  state: string;
  state_reason: string | null;
  created_at: Date;
  seq: number | null;
  provenance: ProvenanceKind;
  signer: string | null;
}
interface EdgeRow {
  child_id: string;
  parent_id: string;
  relation: string;
}

function toItem(r: ItemRow, subjects: string[], parents: EdgeRow[], children: EdgeRow[]): EvidenceItem {
  return {
    tenant: r.tenant_id,
    id: r.id,
    mediaType: r.media_type,
    kind: r.kind,
    predicateType: r.predicate_type,
    size: Number(r.size_bytes),
    producer: r.producer,
    labels: r.labels,
    tier: r.tier,
    state: r.state,
    stateReason: r.state_reason,
    createdAt: new Date(r.created_at).toISOString(),
    subjects,
    parents: parents.map((p) => ({ id: p.parent_id, relation: p.relation })),
    children: children.map((c) => ({ id: c.child_id, relation: c.relation })),
    logSeq: r.seq ?? null,
    provenance: r.provenance,
    signer: r.signer,
  };
}

export async function findItem(db: Db, tenant: string, id: string): Promise<EvidenceItem | null> {
  validateDigest(id, 'evidence id');
  const r = await db.query<ItemRow>(
    `SELECT i.*, l.seq FROM evidence_items i LEFT JOIN evidence_log l ON l.tenant_id=i.tenant_id AND l.item_id=i.id WHERE i.tenant_id=$1 AND i.id=$2`,
    [tenant, id],
  );
  if (!r.rows[0]) return null;
  const [subs, parents, children] = await Promise.all([
    db.query<{ artifact_digest: string }>('SELECT artifact_digest FROM evidence_subjects WHERE tenant_id=$1 AND item_id=$2 ORDER BY artifact_digest', [
      tenant,
      id,
    ]),
    db.query<EdgeRow>('SELECT child_id, parent_id, relation FROM evidence_edges WHERE tenant_id=$1 AND child_id=$2 ORDER BY parent_id', [tenant, id]),
    db.query<EdgeRow>('SELECT child_id, parent_id, relation FROM evidence_edges WHERE tenant_id=$1 AND parent_id=$2 ORDER BY child_id', [tenant, id]),
  ]);
  return toItem(
    r.rows[0],
    subs.rows.map((s) => s.artifact_digest),
    parents.rows,
    children.rows,
  );
}

export interface ListQuery {
  tenant: string;
  artifact?: string;
  kind?: string;
  limit?: number;
  cursor?: string;
  includeAll?: boolean;
}

/** WHERE clause and parameters of a list query (keyset pagination on (created_at, id)). */
function listFilter(q: ListQuery): { where: string[]; params: unknown[] } {
  const params: unknown[] = [q.tenant];
  const where = ['i.tenant_id=$1'];
  if (!q.includeAll) where.push(`i.state <> 'purged'`);
  if (q.artifact) {
    params.push(q.artifact);
    where.push(`EXISTS (SELECT 1 FROM evidence_subjects s WHERE s.tenant_id=i.tenant_id AND s.item_id=i.id AND s.artifact_digest=$${params.length})`);
  }
  if (q.kind) {
    params.push(q.kind);
    where.push(`i.kind=$${params.length}`);
  }
  if (q.cursor) {
    // Stable under concurrent inserts. The cursor keeps PostgreSQL's microsecond timestamp
    // text, since a JS Date would round to milliseconds.
    const [ts, id] = Buffer.from(q.cursor, 'base64url').toString().split('|');
    if (!ts || !id) throw badInput('malformed cursor');
    params.push(ts, id);
    where.push(`(i.created_at, i.id) > ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  return { where, params };
}

export async function listItems(db: Db, q: ListQuery): Promise<{ items: EvidenceItem[]; nextCursor: string | null }> {
  if (q.artifact) validateDigest(q.artifact, 'artifact digest');
  if (q.kind) validateKind(q.kind);
  const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
  const { where, params } = listFilter(q);
  params.push(limit + 1);
  const r = await db.query<ItemRow & { created_key: string }>(
    `SELECT i.*, i.created_at::text AS created_key, l.seq FROM evidence_items i LEFT JOIN evidence_log l ON l.tenant_id=i.tenant_id AND l.item_id=i.id
     WHERE ${where.join(' AND ')} ORDER BY i.created_at, i.id LIMIT $${params.length}`,
    params,
  );
  const rows = r.rows.slice(0, limit);
  const items = await withLinks(db, q.tenant, rows);
  const last = rows[rows.length - 1];
  const nextCursor = r.rows.length > limit && last ? Buffer.from(`${last.created_key}|${last.id}`).toString('base64url') : null;
  return { items, nextCursor };
}

/** Subjects and edges of a page of rows, two queries for the page. */
async function withLinks(db: Db, tenant: string, rows: ItemRow[]): Promise<EvidenceItem[]> {
  const ids = rows.map((x) => x.id);
  if (!ids.length) return [];
  const [subs, edges] = await Promise.all([
    db.query<{ item_id: string; artifact_digest: string }>(
      'SELECT item_id, artifact_digest FROM evidence_subjects WHERE tenant_id=$1 AND item_id = ANY($2) ORDER BY artifact_digest',
      [tenant, ids],
    ),
    db.query<EdgeRow>('SELECT child_id, parent_id, relation FROM evidence_edges WHERE tenant_id=$1 AND (child_id = ANY($2) OR parent_id = ANY($2))', [
      tenant,
      ids,
    ]),
  ]);
  return rows.map((row) =>
    toItem(
      row,
      subs.rows.filter((s) => s.item_id === row.id).map((s) => s.artifact_digest),
      edges.rows.filter((e) => e.child_id === row.id),
      edges.rows.filter((e) => e.parent_id === row.id),
    ),
  );
}

function toHead(x: ItemRow): EvidenceHead {
  return { id: x.id, kind: x.kind, mediaType: x.media_type, size: Number(x.size_bytes), state: x.state, stateReason: x.state_reason, tier: x.tier };
}

interface HeadWaiter {
  tenant: string;
  id: string;
  resolve: (h: EvidenceHead) => void;
  reject: (e: unknown) => void;
}

/** Most lookups one query serves (a full batch is sent at once); also bounds the statements prepared per connection. */
const HEAD_BATCH_MAX = 32;

/**
 * One primary-key lookup per (tenant, id) pair, UNION ALL: each arm is planned as a unique-index
 * probe whatever the table's statistics say (`= ANY` on both columns or a join with unnest was
 * planned as a scan of the tenant's rows while the statistics were stale, at 3–6× the backend's CPU).
 */
const headsSql = Array.from({ length: HEAD_BATCH_MAX + 1 }, (_, n) =>
  Array.from(
    { length: n },
    (_, k) =>
      `SELECT tenant_id, id, kind, media_type, size_bytes, state, state_reason, tier FROM evidence_items WHERE tenant_id=$${2 * k + 1} AND id=$${2 * k + 2}`,
  ).join(' UNION ALL '),
);

/**
 * The index lookups of GET /evidence/:id, batched: lookups made in the same turn of the event
 * loop share one query (a named statement per batch size, parsed and planned once per
 * connection). Per request, the PostgreSQL round trip (the socket write, the reply's parsing and
 * the backend's work) cost more CPU than reading and hashing the blob. This is not a cache: each
 * lookup is sent after its request arrived, so a purge committed before then is always seen.
 * Each waiter gets only the row of its own (tenant, id).
 */
export class HeadLookup {
  private waiting: HeadWaiter[] = [];

  constructor(private readonly db: Db) {}

  get(tenant: string, id: string): Promise<EvidenceHead> {
    validateDigest(id, 'evidence id');
    return new Promise((resolve, reject) => {
      const n = this.waiting.push({ tenant, id, resolve, reject });
      if (n === 1) setImmediate(() => this.flush());
      else if (n >= HEAD_BATCH_MAX) this.flush();
    });
  }

  private flush(): void {
    const batch = this.waiting;
    if (!batch.length) return;
    this.waiting = [];
    this.lookup(batch).catch((e) => {
      for (const w of batch) w.reject(e);
    });
  }

  private async lookup(batch: HeadWaiter[]): Promise<void> {
    const pairs = new Map(batch.map((w) => [`${w.tenant} ${w.id}`, [w.tenant, w.id]]));
    const n = pairs.size;
    const r = await this.db.query<ItemRow>({ name: `evidence-heads-${n}`, text: headsSql[n]!, values: [...pairs.values()].flat() });
    const rows = new Map(r.rows.map((x) => [`${x.tenant_id} ${x.id}`, x]));
    for (const w of batch) {
      const x = rows.get(`${w.tenant} ${w.id}`);
      if (x) w.resolve(toHead(x));
      else w.reject(notFound(`evidence ${w.id} not found`));
    }
  }
}

/** Cold-tier items live under the `cold` namespace of the primary store (retention tier move). */
export function storeOfTier(blobs: BlobStores, tier: string | undefined) {
  return tier === 'cold' ? blobs.primary.withPrefix('cold') : blobs.primary;
}

/** Streams a present item's bytes; the stream fails at the end if the blob is damaged. */
export async function openBlob(blobs: BlobStores, item: EvidenceHead): Promise<Readable> {
  if (item.state === 'purged') throw notFound(`evidence ${item.id} was purged (${item.stateReason ?? 'retention'})`);
  try {
    return await storeOfTier(blobs, item.tier).get(item.id);
  } catch (e) {
    if (e instanceof BlobNotFoundError)
      throw integrity(`evidence ${item.id} is indexed but its blob is missing from ${blobs.primary.location}`, undefined, { cause: e });
    throw e;
  }
}

/** A present item's bytes, verified against its digest. */
export async function readBlob(blobs: BlobStores, item: EvidenceHead): Promise<Buffer> {
  if (item.state === 'purged') throw notFound(`evidence ${item.id} was purged`);
  try {
    return await storeOfTier(blobs, item.tier).getBuffer(item.id, item.size);
  } catch (e) {
    if (e instanceof BlobNotFoundError) throw integrity(`evidence ${item.id} is indexed but its blob is missing`, undefined, { cause: e });
    if ((e as { code?: string }).code === 'DIGEST_MISMATCH')
      throw integrity(`evidence ${item.id} failed its integrity check: ${(e as Error).message}`, undefined, { cause: e });
    throw e;
  }
}

/**
 * What backup, restore, point-in-time restore and evidence packs read from the evidence tables
 * (owned by evidence; used by src/core/backup). Backup and restore work on the whole locker, so
 * the reads marked "all tenants" are deliberately not tenant-scoped.
 */
import type { Queryable } from '../state';

/** One blob a backup copies: the item's digest, size and storage key; `good` false when every row is corrupted. */
export interface BackupBlobRow {
  id: string;
  size: number;
  key: string | null;
  good: boolean;
}

/** All tenants: one row per stored blob whose bytes should exist (not purged), digest order. */
export async function blobsToBackUp(q: Queryable): Promise<BackupBlobRow[]> {
  const r = await q.query(`SELECT id, max(size_bytes) AS size, min(storage_key) AS key, bool_or(state <> 'corrupted') AS good
    FROM evidence_items WHERE state <> 'purged' GROUP BY id ORDER BY id`);
  return r.rows.map((b) => ({ id: String(b.id), size: Number(b.size), key: (b.key as string | null) ?? null, good: !!b.good }));
}

/** All tenants: the number of evidence item rows. */
export async function countAllItems(q: Queryable): Promise<number> {
  return Number((await q.query('SELECT count(*)::bigint AS n FROM evidence_items')).rows[0].n);
}

/** Leaves in the evidence log (0 before the log is initialised). */
export async function evidenceLogSize(q: Queryable): Promise<number> {
  return Number((await q.query('SELECT size FROM log_state')).rows[0]?.size ?? 0);
}

/** Leaf hashes of the evidence log below `size` (all when omitted), seq order; gaps are errors. */
export async function logLeafHashesBelow(q: Queryable, size?: number): Promise<Buffer[]> {
  const r =
    size == null
      ? await q.query('SELECT seq, leaf_hash FROM evidence_log ORDER BY seq')
      : await q.query('SELECT seq, leaf_hash FROM evidence_log WHERE seq < $1 ORDER BY seq', [size]);
  const out: Buffer[] = [];
  for (const row of r.rows) {
    if (Number(row.seq) !== out.length) throw new Error(`evidence log has a gap at seq ${out.length}`);
    out.push(row.leaf_hash as Buffer);
  }
  return out;
}

/** All tenants: the blobs a restore target must hold (present or quarantined items), digest order. */
export async function blobsToRehash(q: Queryable): Promise<{ id: string; size: number }[]> {
  const r = await q.query(`SELECT id, max(size_bytes) AS size FROM evidence_items WHERE state IN ('present','quarantined') GROUP BY id ORDER BY id`);
  return r.rows.map((row) => ({ id: String(row.id), size: Number(row.size) }));
}

/** All tenants: items whose log leaf is at seq ≥ `logSize` and whose state is one of `states`. */
export async function itemsLoggedFrom(q: Queryable, logSize: number, states: readonly string[]): Promise<{ tenant: string; id: string; seq: number }[]> {
  const r = await q.query(
    `SELECT i.tenant_id, i.id, l.seq FROM evidence_log l JOIN evidence_items i ON i.tenant_id = l.tenant_id AND i.id = l.item_id
      WHERE l.seq >= $1 AND i.state = ANY ($2::text[]) ORDER BY l.seq`,
    [logSize, states],
  );
  return r.rows.map((row) => ({ tenant: String(row.tenant_id), id: String(row.id), seq: Number(row.seq) }));
}

/** Item ids of a tenant that name `artifact` as a subject, id order. */
export async function itemIdsForArtifact(q: Queryable, tenant: string, artifact: string): Promise<string[]> {
  const r = await q.query('SELECT DISTINCT item_id FROM evidence_subjects WHERE tenant_id=$1 AND artifact_digest=$2 ORDER BY item_id', [tenant, artifact]);
  return r.rows.map((row) => String(row.item_id));
}

/** An item as an evidence pack carries it: metadata, subjects, parents and its log leaf (null when unlogged). */
export interface PackItemRow {
  id: string;
  kind: string;
  mediaType: string;
  predicateType: string | null;
  size: number;
  state: string;
  stateReason: string | null;
  createdAt: Date;
  seq: number | null;
  leaf: Buffer | null;
  leafHash: Buffer | null;
  subjects: string[];
  parents: { id: string; relation: string }[];
}

/** The named items of a tenant with subjects, parents (child → parent edges) and log leaf. */
export async function packItems(q: Queryable, tenant: string, ids: readonly string[]): Promise<PackItemRow[]> {
  const r = await q.query(
    `SELECT i.id, i.kind, i.media_type, i.predicate_type, i.size_bytes, i.state, i.state_reason, i.created_at, l.seq, l.leaf, l.leaf_hash,
       coalesce((SELECT array_agg(artifact_digest ORDER BY artifact_digest) FROM evidence_subjects s WHERE s.tenant_id=i.tenant_id AND s.item_id=i.id), '{}') AS subjects,
       coalesce((SELECT json_agg(json_build_object('id', parent_id, 'relation', relation) ORDER BY parent_id, relation) FROM evidence_edges e WHERE e.tenant_id=i.tenant_id AND e.child_id=i.id), '[]') AS parents
     FROM evidence_items i LEFT JOIN evidence_log l ON l.tenant_id=i.tenant_id AND l.item_id=i.id
     WHERE i.tenant_id=$1 AND i.id = ANY($2)`,
    [tenant, ids],
  );
  return r.rows.map((row) => ({
    id: String(row.id),
    kind: String(row.kind),
    mediaType: String(row.media_type),
    predicateType: (row.predicate_type as string | null) ?? null,
    size: Number(row.size_bytes),
    state: String(row.state),
    stateReason: (row.state_reason as string | null) ?? null,
    createdAt: row.created_at as Date,
    seq: row.seq == null ? null : Number(row.seq),
    leaf: (row.leaf as Buffer | null) ?? null,
    leafHash: (row.leaf_hash as Buffer | null) ?? null,
    subjects: row.subjects as string[],
    parents: row.parents as { id: string; relation: string }[],
  }));
}

/** The latest integrity verification runs, all tenants (diagnostics). */
export async function recentVerifyRuns(q: Queryable, limit = 10): Promise<Record<string, unknown>[]> {
  const r = await q.query(
    'SELECT id, tenant_id, mode, status, total, checked, ok, failed, to_anchor, started_at, finished_at FROM verify_runs ORDER BY started_at DESC LIMIT $1',
    [limit],
  );
  return r.rows;
}

/** The latest locker operations (index rebuilds, repairs, bulk ingests), all tenants (diagnostics). */
export async function recentLockerOps(q: Queryable, limit = 20): Promise<Record<string, unknown>[]> {
  const r = await q.query('SELECT id, op, status, actor, started_at, finished_at FROM locker_ops ORDER BY started_at DESC LIMIT $1', [limit]);
  return r.rows;
}

/** What Merkle anchoring reads from the evidence log (owned by evidence; used by src/core/anchoring). */
import type { Db, DbClient } from '../../../db/pool';

/** One evidence_log row, as anchoring hashes it. */
export interface LogRow {
  seq: number;
  tenant: string;
  itemId: string;
  leaf: Buffer;
  leafHash: Buffer;
}

/** Leaves in the log (log_state.size). Inside a transaction it reads that transaction's view. */
export async function logSize(db: Db | DbClient): Promise<number> {
  return Number((await db.query('SELECT size FROM log_state WHERE id')).rows[0].size);
}

/** Rows actually present in evidence_log (a truncated log holds fewer than log_state says). */
export async function logRowCount(db: Db | DbClient): Promise<number> {
  return Number((await db.query('SELECT count(*)::bigint AS n FROM evidence_log')).rows[0].n);
}

/** Log rows with seq in [from, to), in seq order (the caller checks density). */
export async function logRows(db: Db | DbClient, from: number, to: number): Promise<LogRow[]> {
  const r = await db.query('SELECT seq, tenant_id, item_id, leaf, leaf_hash FROM evidence_log WHERE seq >= $1 AND seq < $2 ORDER BY seq', [from, to]);
  return r.rows.map((row) => ({
    seq: Number(row.seq),
    tenant: row.tenant_id,
    itemId: row.item_id,
    leaf: row.leaf as Buffer,
    leafHash: row.leaf_hash as Buffer,
  }));
}

/** Leaf hashes with seq in [from, to), in seq order, with their seq (the caller checks density). */
export async function logLeafHashes(db: Db | DbClient, from: number, to: number): Promise<{ seq: number; leafHash: Buffer }[]> {
  const r = await db.query('SELECT seq, leaf_hash FROM evidence_log WHERE seq >= $1 AND seq < $2 ORDER BY seq', [from, to]);
  return r.rows.map((row) => ({ seq: Number(row.seq), leafHash: row.leaf_hash as Buffer }));
}

/** The log entry of one item of a tenant, or null when the item is not in that tenant's log. */
export async function logEntryOf(db: Db | DbClient, tenant: string, itemId: string): Promise<{ seq: number; leaf: Buffer } | null> {
  const r = await db.query('SELECT seq, leaf FROM evidence_log WHERE tenant_id = $1 AND item_id = $2', [tenant, itemId]);
  return r.rowCount ? { seq: Number(r.rows[0].seq), leaf: r.rows[0].leaf as Buffer } : null;
}

/** Seconds since the first leaf was appended (null for an empty log): the anchor age before any anchor. */
export async function oldestLeafAgeSeconds(db: Db): Promise<number | null> {
  const r = await db.query('SELECT extract(epoch FROM now() - min(appended_at))::float AS age FROM evidence_log');
  return (r.rows[0]?.age as number | null) ?? null;
}

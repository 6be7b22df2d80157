/**
 * What backup, restore, point-in-time restore, evidence packs and diagnostics read or change in
 * the anchoring tables (owned by anchoring; used by src/core/backup).
 */
import type { Queryable } from '../../evidence/state';
import { type AnchorView, toAnchorView } from '../store';

/** False on a database whose migrations have not created the anchoring tables yet. */
export async function anchorsTableExists(q: Queryable): Promise<boolean> {
  const r = await q.query(`SELECT to_regclass('public.anchors') IS NOT NULL AS ok`);
  return !!r.rows[0].ok;
}

/** One anchor as a backup records it (chain.jsonl and the schema's anchor list). */
export interface AnchorChainRow {
  id: string;
  chainId: string;
  seq: number;
  logSize: number;
  rootHash: string;
  jws: string;
  createdAt: Date;
  status: string;
}

/** Every anchor of every chain, in chain then seq order. */
export async function anchorChainRows(q: Queryable): Promise<AnchorChainRow[]> {
  const r = await q.query(
    `SELECT id::text AS id, chain_id::text AS chain_id, seq, log_size, root_hash, jws, created_at, status FROM anchors ORDER BY chain_id, seq`,
  );
  const hex = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('hex') : String(v));
  return r.rows.map((row) => ({
    id: String(row.id),
    chainId: String(row.chain_id),
    seq: Number(row.seq),
    logSize: Number(row.log_size),
    rootHash: hex(row.root_hash),
    jws: String(row.jws),
    createdAt: new Date(row.created_at as string),
    status: String(row.status),
  }));
}

/** Log size and root of every anchor, by id (restore compares them with the backup's). */
export async function anchorRoots(q: Queryable): Promise<Map<string, { logSize: number; rootHash: string }>> {
  const r = await q.query('SELECT id, log_size, root_hash FROM anchors');
  return new Map(r.rows.map((row) => [String(row.id), { logSize: Number(row.log_size), rootHash: String(row.root_hash) }]));
}

/** Point-in-time restore: archives the anchors after (chainId, seq) or beyond logSize; returns their ids. */
export async function archiveAnchorsAfter(q: Queryable, chainId: string, seq: number, logSize: number): Promise<string[]> {
  const r = await q.query(`UPDATE anchors SET status='archived' WHERE status <> 'archived' AND ((chain_id = $1 AND seq > $2) OR log_size > $3) RETURNING id`, [
    chainId,
    seq,
    logSize,
  ]);
  return r.rows.map((row) => String(row.id));
}

/** The newest active anchor covering leaf `maxSeq` (log size above it), with its JWS; null if none. */
export async function newestActiveAnchorCovering(q: Queryable, maxSeq: number): Promise<AnchorView | null> {
  const r = await q.query(`SELECT * FROM anchors WHERE status = 'active' AND log_size > $1 ORDER BY log_size DESC, created_at DESC LIMIT 1`, [maxSeq]);
  return r.rowCount ? toAnchorView(r.rows[0], true) : null;
}

/** The latest `anchor verify` outcomes (diagnostics). */
export async function recentAnchorVerifications(q: Queryable, limit = 5): Promise<Record<string, unknown>[]> {
  const r = await q.query('SELECT scope, ok, checked, first_break, verified_at FROM anchor_verifications ORDER BY verified_at DESC, id DESC LIMIT $1', [limit]);
  return r.rows;
}

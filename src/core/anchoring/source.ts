import type { Db, DbClient } from '../../db/pool';
import { HASH_SIZE, leafHash as leafHashOf, hashEquals, type SubtreeRef, type SubtreeSource } from '../../merkle';
import { integrity } from '../../lib/errors';
import { logLeafHashes, logRows, type LogRow } from '../evidence/queries/anchoring';

export type { LogRow };

/**
 * PostgreSQL-backed SubtreeSource: leaf hashes from evidence_log, perfect subtrees from
 * merkle_nodes. Only levels >= STORE_MIN_LEVEL are stored; a missing smaller subtree
 * (<= MAX_LEAF_READ leaves) is hashed from its leaves, so a proof costs O(log N) lookups plus
 * a few reads of <= 16 leaves.
 */
export const STORE_MIN_LEVEL = 4;
export const MAX_LEAF_READ = 16;
export const PROOF_OPTS = { maxLeafRead: MAX_LEAF_READ };

export interface SourceStats {
  leafReads: number;
  leavesRead: number;
  subtreeLookups: number;
  roundTrips: number;
}

export class PgSubtreeSource implements SubtreeSource {
  stats: SourceStats = { leafReads: 0, leavesRead: 0, subtreeLookups: 0, roundTrips: 0 };
  getSubtrees?: (refs: readonly SubtreeRef[]) => Promise<(Uint8Array | undefined)[]>;

  /** storedNodes=false: recompute everything from evidence_log (verification "from the log"). */
  constructor(
    private readonly db: Db | DbClient,
    opts: { storedNodes?: boolean } = {},
  ) {
    if (opts.storedNodes !== false) {
      this.getSubtrees = async (refs) => {
        this.stats.roundTrips++;
        this.stats.subtreeLookups += refs.length;
        if (refs.length === 0) return [];
        const r = await this.db.query(
          `SELECT n.level, n.idx, n.hash FROM merkle_nodes n JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, idx) ON n.level = k.level AND n.idx = k.idx`,
          [refs.map((x) => x.level), refs.map((x) => x.index)],
        );
        const m = new Map<string, Buffer>(r.rows.map((row) => [`${row.level}/${Number(row.idx)}`, row.hash as Buffer]));
        return refs.map((x) => m.get(`${x.level}/${x.index}`));
      };
    }
  }

  async getLeafHashes(start: number, end: number): Promise<Buffer[]> {
    if (end <= start) return [];
    this.stats.leafReads++;
    this.stats.leavesRead += end - start;
    const rows = await logLeafHashes(this.db, start, end);
    if (rows.length !== end - start) throw integrity(`evidence log holds ${rows.length} of the leaves [${start}, ${end}): the log has a gap`);
    return rows.map((row, i) => {
      if (row.seq !== start + i) throw integrity(`evidence log has a gap at seq ${start + i}`);
      const h = row.leafHash;
      if (!Buffer.isBuffer(h) || h.length !== HASH_SIZE) throw integrity(`evidence log seq ${start + i} has a malformed leaf_hash`);
      return h;
    });
  }
}

/** Stream log rows [from, to) in seq order, in chunks; fails on a gap (the log must be dense). */
export async function* streamLog(db: Db | DbClient, from: number, to: number, chunk = 5000): AsyncGenerator<LogRow[]> {
  for (let s = from; s < to; s += chunk) {
    const e = Math.min(to, s + chunk);
    const rows = await logRows(db, s, e);
    if (rows.length !== e - s) throw integrity(`evidence log holds ${rows.length} of the leaves [${s}, ${e}): the log has a gap`);
    rows.forEach((row, i) => {
      if (row.seq !== s + i) throw integrity(`evidence log has a gap at seq ${s + i}`);
    });
    yield rows;
  }
}

/** A log row whose stored leaf_hash is not SHA-256(0x00 ‖ leaf): the row was altered. */
export function leafRowProblem(row: LogRow): string | undefined {
  if (!Buffer.isBuffer(row.leafHash) || row.leafHash.length !== HASH_SIZE) return 'leaf_hash is not 32 bytes';
  if (!hashEquals(leafHashOf(row.leaf), row.leafHash)) return 'leaf_hash does not match SHA-256(0x00 ‖ leaf)';
  return undefined;
}

/** Persist completed subtrees (levels >= STORE_MIN_LEVEL) in one statement per batch. */
export async function storeNodes(tx: DbClient, nodes: { level: number; index: number; hash: Buffer }[], overwrite = false): Promise<number> {
  let written = 0;
  for (let i = 0; i < nodes.length; i += 5000) {
    const b = nodes.slice(i, i + 5000);
    const r = await tx.query(
      `INSERT INTO merkle_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
       ON CONFLICT (level, idx) DO ${overwrite ? 'UPDATE SET hash = EXCLUDED.hash WHERE merkle_nodes.hash <> EXCLUDED.hash' : 'NOTHING'}`,
      [b.map((n) => n.level), b.map((n) => n.index), b.map((n) => n.hash)],
    );
    written += r.rowCount ?? 0;
  }
  return written;
}

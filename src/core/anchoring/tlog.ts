/**
 * The evidence log served read-only in the C2SP tlog-tiles layout, at the tree of the latest
 * checkpoint, and RFC 9162 consistency proofs between two anchors. A log entry is the leaf the
 * Merkle log hashes: the canonical JSON evidence leaf (src/merkle/leaf.ts) stored in
 * evidence_log.leaf, whose record hash is SHA-256(0x00 ‖ leaf).
 */
import {
  consistencyProofFromSource,
  encodeEntryBundle,
  hashFromHex,
  resolveSubtrees,
  tileNodes,
  tileWithin,
  verifyConsistency,
  type TileRef,
} from '../../merkle';
import { badInput, notFound } from '../../lib/errors';
import type { AppContext } from '../context';
import { logLeafHashes, logRows } from '../evidence/queries/anchoring';
import { PROOF_OPTS, PgSubtreeSource } from './source';
import { anchorById } from './store';
import { storedCosignatures, validWitnesses, witnessKeys, witnessPolicy } from './witness';
import { anchorTimestamp } from './timestamp';
import { checkpointKeys } from './checkpoint';

export interface ServedCheckpoint {
  anchorId: string;
  size: number;
  /** The signed note, with any witness cosignature lines appended. */
  note: string;
}

/** The newest checkpoint of the active chain, cosigned lines included; null before the first checkpoint. */
export async function latestCheckpoint(ctx: Pick<AppContext, 'db'>): Promise<ServedCheckpoint | null> {
  const r = await ctx.db.query(
    `SELECT a.id, a.log_size, a.checkpoint FROM anchors a JOIN anchor_chains c ON c.id = a.chain_id
     WHERE c.status = 'active' AND a.checkpoint IS NOT NULL ORDER BY a.seq DESC LIMIT 1`,
  );
  if (!r.rowCount) return null;
  const row = r.rows[0];
  const cosigs = (await storedCosignatures(ctx, [row.id])).get(row.id) ?? [];
  return { anchorId: row.id, size: Number(row.log_size), note: row.checkpoint + cosigs.map((c) => `${c.line}\n`).join('') };
}

/** One tile's bytes: hashes (32 bytes each) or an entry bundle; 404 unless the tile exists at the latest checkpoint's size. */
export async function readTile(ctx: Pick<AppContext, 'db'>, t: TileRef): Promise<Buffer> {
  const cp = await latestCheckpoint(ctx);
  if (!cp) throw notFound('no checkpoint yet (stella evidence anchor create)');
  if (!tileWithin(t, cp.size)) throw notFound(`tile not in the tree of ${cp.size} leaves`);
  const { treeLevel, start, count } = tileNodes(t);
  if (t.kind === 'entries') return encodeEntryBundle((await logRows(ctx.db, start, start + count)).map((r) => r.leaf));
  if (treeLevel === 0) {
    const rows = await logLeafHashes(ctx.db, start, start + count);
    if (rows.length !== count) throw notFound(`the log holds ${rows.length} of the ${count} leaves of this tile`);
    return Buffer.concat(rows.map((r) => r.leafHash));
  }
  const refs = Array.from({ length: count }, (_, i) => ({ level: treeLevel, index: start + i }));
  return Buffer.concat(await resolveSubtrees(new PgSubtreeSource(ctx.db), refs, PROOF_OPTS));
}

export interface ConsistencyResult {
  ok: boolean;
  from: { id: string; logSize: number; rootHash: string };
  to: { id: string; logSize: number; rootHash: string };
  /** RFC 9162 §2.1.4 proof (hex), from the log as stored now. */
  proof: string[];
  /** Named when not ok: the log no longer matches the older anchor, the newer one, or the two fork. */
  problem: 'forked-checkpoint' | 'rewritten-log' | null;
  detail: string;
}

/**
 * `anchor consistency --from --to`: the proof that the tree of the older anchor is a prefix of the
 * newer one's, built from the stored log and checked against both signed roots.
 */
export async function anchorConsistency(ctx: Pick<AppContext, 'db'>, fromId: string, toId: string): Promise<ConsistencyResult> {
  const from = await anchorById(ctx, fromId);
  const to = await anchorById(ctx, toId);
  if (from.logSize > to.logSize)
    throw badInput(`--from ${from.id.slice(0, 12)} covers ${from.logSize} leaves, more than --to ${to.id.slice(0, 12)} (${to.logSize}); swap them`);
  const ends = { from: { id: from.id, logSize: from.logSize, rootHash: from.rootHash }, to: { id: to.id, logSize: to.logSize, rootHash: to.rootHash } };
  if (from.logSize === to.logSize) {
    const same = from.rootHash === to.rootHash;
    return {
      ...ends,
      ok: same,
      proof: [],
      problem: same ? null : 'forked-checkpoint',
      detail: same ? `both anchors commit to the same tree of ${to.logSize} leaves` : `forked checkpoint: two roots for the same size ${to.logSize}`,
    };
  }
  const proof = await consistencyProofFromSource(new PgSubtreeSource(ctx.db), from.logSize, to.logSize, PROOF_OPTS);
  const ok = verifyConsistency(from.logSize, to.logSize, hashFromHex(from.rootHash), hashFromHex(to.rootHash), proof);
  return {
    ...ends,
    ok,
    proof: proof.map((p) => p.toString('hex')),
    problem: ok ? null : 'rewritten-log',
    detail: ok
      ? `the tree of ${from.logSize} leaves is a prefix of the tree of ${to.logSize} leaves`
      : `the stored log does not prove ${from.logSize} → ${to.logSize}: leaves were rewritten or the anchors fork`,
  };
}

/** `anchor checkpoint <id>`: the anchor as a C2SP checkpoint with its cosignatures, RFC 3161 token and the vkeys to check them. */
export async function anchorCheckpoint(ctx: Pick<AppContext, 'db' | 'keys' | 'cfg'>, id: string) {
  const a = id === 'latest' ? await latestCheckpoint(ctx) : null;
  const anchor = await anchorById(ctx, a ? a.anchorId : id);
  const r = await ctx.db.query('SELECT checkpoint FROM anchors WHERE id = $1', [anchor.id]);
  const checkpoint: string | null = r.rows[0]?.checkpoint ?? null;
  const cosignatures = (await storedCosignatures(ctx, [anchor.id])).get(anchor.id) ?? [];
  const ts = await anchorTimestamp(ctx, anchor.id);
  const policy = witnessPolicy(ctx);
  const valid = checkpoint && policy.witnesses.length ? validWitnesses(checkpoint, cosignatures, witnessKeys(ctx)).length : 0;
  return {
    anchorId: anchor.id,
    checkpoint: checkpoint === null ? null : checkpoint + cosignatures.map((c) => `${c.line}\n`).join(''),
    cosignatures,
    timestamp: ts ? { tsaUrl: ts.tsaUrl, genTime: ts.genTime, token: ts.token } : null,
    vkeys: await checkpointKeys(ctx),
    witness: { ...policy, valid },
  };
}

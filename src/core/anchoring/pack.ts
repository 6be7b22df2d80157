/**
 * What an offline evidence pack carries so it verifies with standard tools and no stella code
 * (docs/verify-offline.md): the anchor's C2SP checkpoint, the vkeys of the checkpoint keys,
 * the RFC 3161 token over the checkpoint, witness cosignatures, and a consistency proof from
 * the previous checkpoint of the chain. Deterministic for a given anchor.
 */
import { canonicalJson } from '../../lib/canonical';
import { consistencyProofFromSource, hashFromHex, verifyConsistency } from '../../merkle';
import { integrity } from '../../lib/errors';
import type { AppContext } from '../context';
import { checkpointKeys } from './checkpoint';
import { PROOF_OPTS, PgSubtreeSource } from './source';
import { anchorTimestamp } from './timestamp';
import { storedCosignatures } from './witness';

export interface PackFile {
  path: string;
  bytes: Buffer;
  mediaType: string;
}

/** Files under checkpoint/ for the pack of `anchorId`, in path order; none for an anchor made before checkpoints. */
export async function checkpointPackFiles(ctx: Pick<AppContext, 'db' | 'keys' | 'cfg'>, anchorId: string): Promise<PackFile[]> {
  const r = await ctx.db.query('SELECT id, chain_id, seq, log_size, root_hash, checkpoint, checkpoint_kid FROM anchors WHERE id = $1', [anchorId]);
  const a = r.rows[0];
  if (!a?.checkpoint) return [];
  const out: PackFile[] = [];
  const text = (path: string, s: string, mediaType = 'text/plain') => out.push({ path, bytes: Buffer.from(s, 'utf8'), mediaType });
  text('checkpoint/checkpoint.txt', a.checkpoint);
  const prev = await previousCheckpoint(ctx, a);
  if (prev) {
    text('checkpoint/consistency.json', canonicalJson(prev.proofDoc), 'application/json');
  }
  const cosigs = (await storedCosignatures(ctx, [a.id])).get(a.id) ?? [];
  if (cosigs.length) text('checkpoint/cosigned.txt', a.checkpoint + cosigs.map((c) => `${c.line}\n`).join(''));
  if (prev) text('checkpoint/previous.txt', prev.checkpoint);
  const ts = await anchorTimestamp(ctx, a.id);
  if (ts) out.push({ path: 'checkpoint/timestamp.tsr', bytes: Buffer.from(ts.token, 'base64'), mediaType: 'application/timestamp-reply' });
  const origin = a.checkpoint.split('\n', 1)[0] as string;
  const vkeys = (await checkpointKeys(ctx, origin)).filter((k) => k.kid === a.checkpoint_kid);
  text('checkpoint/vkeys.txt', vkeys.map((k) => `${k.vkey}\n`).join(''));
  return out.sort((x, y) => (x.path < y.path ? -1 : 1));
}

/** The chain's previous anchor with a checkpoint, and the RFC 9162 proof from it to this one (checked before it is packed). */
async function previousCheckpoint(ctx: Pick<AppContext, 'db'>, a: Record<string, any>): Promise<{ checkpoint: string; proofDoc: object } | null> {
  const r = await ctx.db.query(
    'SELECT id, log_size, root_hash, checkpoint FROM anchors WHERE chain_id = $1 AND seq < $2 AND checkpoint IS NOT NULL ORDER BY seq DESC LIMIT 1',
    [a.chain_id, a.seq],
  );
  const p = r.rows[0];
  if (!p) return null;
  const m = Number(p.log_size);
  const n = Number(a.log_size);
  const proof = m === 0 || m === n ? [] : await consistencyProofFromSource(new PgSubtreeSource(ctx.db), m, n, PROOF_OPTS);
  if (!verifyConsistency(m, n, hashFromHex(p.root_hash), hashFromHex(a.root_hash), proof))
    throw integrity(
      `anchor ${String(a.id).slice(0, 12)} is not consistent with the previous checkpoint ${String(p.id).slice(0, 12)}; run stella evidence anchor verify --all`,
    );
  return {
    checkpoint: p.checkpoint,
    proofDoc: { format: 'stella.consistency-proof.v1', fromAnchor: p.id, toAnchor: a.id, size1: m, size2: n, proof: proof.map((h) => h.toString('hex')) },
  };
}

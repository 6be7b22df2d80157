import type { Db, DbClient } from '../../db/pool';
import type { AppContext } from '../context';
import { merkleRoot } from '../../merkle';
import type { RootPack } from '../../crypto/rootpack';
import { anchorById, latestAnchor, anchorVerifyAll, type AnchorView, type AnchorVerifyResult } from '../anchoring';
import { integrity } from '../../lib/errors';

/**
 * Thin glue to the anchoring module (src/core/anchoring owns the anchors tables): lookups,
 * the log root at a size, and `anchor verify --all` with the backup's RootPack as extra trust
 * (after a disaster the key store may hold only new keys; old anchors still verify against the
 * public keys the backup carried).
 */

export type { AnchorView };

export async function anchorsTableExists(db: Db | DbClient): Promise<boolean> {
  const r = await db.query(`SELECT to_regclass('public.anchors') IS NOT NULL AS ok`);
  return !!r.rows[0].ok;
}

export async function findAnchor(db: Db, id: string): Promise<AnchorView & { jws: string }> {
  return (await anchorById({ db }, id, { jws: true })) as AnchorView & { jws: string };
}

export async function newestAnchor(db: Db): Promise<AnchorView | null> {
  return (await anchorsTableExists(db)) ? latestAnchor({ db }) : null;
}

/** Leaf hashes of the evidence log below `size` (all when omitted), seq order; gaps are errors. */
export async function logLeafHashes(db: Db | DbClient, size?: number): Promise<Buffer[]> {
  const r =
    size == null
      ? await db.query('SELECT seq, leaf_hash FROM evidence_log ORDER BY seq')
      : await db.query('SELECT seq, leaf_hash FROM evidence_log WHERE seq < $1 ORDER BY seq', [size]);
  const out: Buffer[] = [];
  for (const row of r.rows) {
    if (Number(row.seq) !== out.length) throw new Error(`evidence log has a gap at seq ${out.length}`);
    out.push(row.leaf_hash as Buffer);
  }
  return out;
}

/** RFC 6962 root (hex) of the first `size` leaves of the evidence log. */
export async function logRootAt(db: Db | DbClient, size: number): Promise<string> {
  const leaves = await logLeafHashes(db, size);
  if (leaves.length < size) throw new Error(`evidence log holds ${leaves.length} leaves, fewer than ${size}`);
  return merkleRoot(leaves, size).toString('hex');
}

/** `anchor verify --all`, trusting also the given RootPack (e.g. the backup's). Not recorded twice on retries that fail. */
export async function verifyAllAnchors(ctx: AppContext, rootPack?: RootPack): Promise<AnchorVerifyResult> {
  return anchorVerifyAll(ctx, { rootPack });
}

/**
 * `verify --to-anchor`: the anchor's log size becomes the verification's maxLogSize, after the
 * anchored root is checked against the log of exactly that size (INTEGRITY if they differ).
 */
export async function resolveToAnchor(db: Db, id: string): Promise<{ anchorId: string; logSize: number; rootHash: string }> {
  const a = await findAnchor(db, id);
  const root = await logRootAt(db, a.logSize).catch((e: Error) => {
    throw integrity(`cannot recompute the log root at size ${a.logSize} for anchor ${a.id}: ${e.message}`);
  });
  if (root !== a.rootHash) throw integrity(`anchor ${a.id} root ${a.rootHash} does not match the evidence log at size ${a.logSize} (${root})`);
  return { anchorId: a.id, logSize: a.logSize, rootHash: a.rootHash };
}

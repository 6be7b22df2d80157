/**
 * Thin glue to the anchoring module (src/core/anchoring owns the anchors tables): lookups,
 * the log root at a size, and `anchor verify --all` with the backup's RootPack as extra trust
 * (after a disaster the key store may hold only new keys; old anchors still verify against the
 * public keys the backup carried).
 */
import type { Db } from '../../db/pool';
import type { AppContext } from '../context';
import { merkleRoot } from '../../merkle';
import type { RootPack } from '../../crypto/rootpack';
import { anchorById, latestAnchor, anchorVerifyAll, type AnchorView, type AnchorVerifyResult } from '../anchoring';
import { anchorsTableExists } from '../anchoring/queries/backup';
import { logLeafHashesBelow } from '../evidence/queries/backup';
import type { Queryable } from '../evidence/state';
import { integrity } from '../../lib/errors';

export type { AnchorView };
export { anchorsTableExists };

export async function findAnchor(db: Db, id: string): Promise<AnchorView & { jws: string }> {
  return (await anchorById({ db }, id, { jws: true })) as AnchorView & { jws: string };
}

export async function newestAnchor(db: Db): Promise<AnchorView | null> {
  return (await anchorsTableExists(db)) ? latestAnchor({ db }) : null;
}

/** RFC 6962 root (hex) of the first `size` leaves of the evidence log. */
export async function logRootAt(db: Queryable, size: number): Promise<string> {
  const leaves = await logLeafHashesBelow(db, size);
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

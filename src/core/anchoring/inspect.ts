/** `anchor inspect`: one anchor with its signature, link and chain checked. */
import { anchorHash, verifyAnchor } from '../../merkle';
import { trustedRootPack } from '../attest/attest';
import type { AppContext } from '../context';
import { notFound } from '../../lib/errors';
import { anchorById, latestAnchor, toChainView, type AnchorView, type ChainView } from './store';
import { anchorTrust } from './trust';

export interface AnchorInspection {
  anchor: AnchorView;
  jwsHashMatchesId: boolean;
  signature: { ok: boolean; detail: string };
  link: { ok: boolean; detail: string };
  chain: ChainView | null;
  previousId: string | null;
  nextId: string | null;
}

/** Anchor by id prefix, or the newest one for 'latest'. */
export async function anchorOrLatest(ctx: Pick<AppContext, 'db'>, id: string, opts: { jws?: boolean } = {}): Promise<AnchorView> {
  if (id !== 'latest') return anchorById(ctx, id, opts);
  const a = await latestAnchor(ctx, opts);
  if (!a) throw notFound('no anchor yet (stella evidence anchor create)');
  return a;
}

async function neighbours(ctx: Pick<AppContext, 'db'>, a: AnchorView) {
  const [chain, prev, next] = await Promise.all([
    ctx.db.query('SELECT * FROM anchor_chains WHERE id = $1', [a.chainId]),
    ctx.db.query('SELECT id, jws FROM anchors WHERE chain_id = $1 AND seq = $2', [a.chainId, a.seq - 1]),
    ctx.db.query('SELECT id FROM anchors WHERE chain_id = $1 AND seq = $2', [a.chainId, a.seq + 1]),
  ]);
  return {
    chain: chain.rowCount ? toChainView(chain.rows[0]) : null,
    prev: prev.rowCount ? { id: prev.rows[0].id as string, jws: prev.rows[0].jws as string } : null,
    nextId: (next.rows[0]?.id as string | undefined) ?? null,
  };
}

function linkOf(a: AnchorView, prev: { id: string; jws: string } | null): { ok: boolean; detail: string } {
  if (a.seq === 0) return { ok: a.prevAnchorHash === null, detail: 'genesis anchor of its chain' };
  if (!prev) return { ok: false, detail: `seq ${a.seq - 1} is missing` };
  const ok = anchorHash(prev.jws) === a.prevAnchorHash;
  return { ok, detail: ok ? `links to seq ${a.seq - 1} (${prev.id})` : `prev_anchor_hash does not match seq ${a.seq - 1}` };
}

export async function inspectAnchor(ctx: AppContext, id: string): Promise<AnchorInspection> {
  const a = await anchorOrLatest(ctx, id, { jws: true });
  const { chain, prev, nextId } = await neighbours(ctx, a);
  const trust = await anchorTrust(ctx.keys, await trustedRootPack(ctx));
  let signature: { ok: boolean; detail: string };
  try {
    const v = await verifyAnchor(a.jws!, trust.resolver);
    const wp = trust.windowProblem(v.payload.kid, new Date(v.payload.createdAt));
    signature = wp ? { ok: false, detail: wp } : { ok: true, detail: `${v.alg} signature by ${v.payload.kid} valid` };
  } catch (e) {
    signature = { ok: false, detail: (e as Error).message };
  }
  return {
    anchor: a,
    jwsHashMatchesId: anchorHash(a.jws!) === a.id,
    signature,
    link: linkOf(a, prev),
    chain,
    previousId: prev?.id ?? null,
    nextId,
  };
}

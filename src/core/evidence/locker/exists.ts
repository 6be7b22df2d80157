/** `stella evidence exists`: whether an item is indexed *and* its blob is there (by default a stat; deep: re-hashed). */
import type { AppContext } from '../../context';
import { validateDigest } from '../index';
import { tierStore } from './storage';

export type BlobPresence = 'present' | 'intact' | 'missing' | 'size-mismatch' | 'hash-mismatch';

export interface Existence {
  id: string;
  /** Indexed and not purged. */
  indexed: boolean;
  state: string | null;
  kind: string | null;
  size: number | null;
  /** What the store holds: present (stat, size matches), intact (deep: re-hashed), or what is wrong; null when not indexed. */
  blob: BlobPresence | null;
  check: 'stat' | 'hash';
  /** Indexed, blob there, and (deep) intact: what GET /evidence/:id can serve. */
  exists: boolean;
}

export async function existence(ctx: AppContext, tenant: string, id: string, deep: boolean): Promise<Existence> {
  validateDigest(id, 'evidence id');
  const item = await ctx.evidence.find(tenant, id);
  const check = deep ? 'hash' : 'stat';
  if (!item || item.state === 'purged')
    return { id, indexed: false, state: item?.state ?? null, kind: item?.kind ?? null, size: null, blob: null, check, exists: false };
  const store = tierStore(ctx, item.tier);
  let blob: BlobPresence;
  if (deep) {
    const h = await store.hash(id);
    blob = !h ? 'missing' : h.actual !== id ? 'hash-mismatch' : h.size !== item.size ? 'size-mismatch' : 'intact';
  } else {
    const st = await store.stat(id);
    blob = !st ? 'missing' : st.size !== item.size ? 'size-mismatch' : 'present';
  }
  const ok = blob === 'present' || blob === 'intact';
  return { id, indexed: true, state: item.state, kind: item.kind, size: item.size, blob, check, exists: ok && item.state !== 'corrupted' };
}

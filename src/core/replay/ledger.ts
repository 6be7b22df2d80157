/** `verify --ledger`: a recorded scan's manifest is proven included in a signed anchor of the Merkle log. */
import type { AppContext } from '../context';
import { inclusionProofFor, verifyOffline } from '../anchoring';
import { trustedRootPack } from '../attest/attest';
import { decodeAnchorUnverified } from '../../merkle';
import { getRun } from './runs';

export interface LedgerCheck {
  ok: boolean;
  manifest: string;
  reason?: string;
  anchor?: string | null;
  leafIndex?: number | null;
  treeSize?: number | null;
  signer?: string;
  detail?: string;
}

/**
 * The manifest's evidence item has an inclusion proof in a signed anchor of the Merkle log, and
 * that proof verifies the way an offline verifier would check it, under a key this locker trusts.
 */
export async function ledgerCheck(ctx: AppContext, tenant: string, scanId: string): Promise<LedgerCheck> {
  const run = await getRun(ctx, tenant, scanId);
  try {
    const proof = await inclusionProofFor(ctx, tenant, run.manifestDigest);
    // Pin the anchor's signing key to one this locker trusts (not just the key embedded in the proof).
    const kid = decodeAnchorUnverified(proof.anchor)?.kid;
    const trusted = (await trustedRootPack(ctx)).keys.find((k) => k.kid === kid);
    if (!trusted) return { ok: false, manifest: run.manifestDigest, reason: `anchor signed by ${kid ?? 'an unknown key'}, which is not in the RootPack` };
    const v = await verifyOffline(proof, { trust: { jwk: trusted.publicJwk }, evidenceId: run.manifestDigest });
    return {
      ok: v.ok,
      manifest: run.manifestDigest,
      anchor: v.anchorHash ?? null,
      leafIndex: v.leafIndex ?? null,
      treeSize: v.payload?.logSize ?? null,
      signer: kid,
      detail: v.detail,
    };
  } catch (e) {
    return { ok: false, manifest: run.manifestDigest, reason: (e as Error).message };
  }
}

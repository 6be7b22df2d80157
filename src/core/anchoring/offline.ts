import type { JWK } from 'jose';
import type { RootPack } from '../../crypto/rootpack';
import { decodeLeaf, verifyExportedAnchor, type AnchorPayload, type EvidenceLeaf, type ExportedAnchor, type ExportedInclusion } from '../../merkle';

/**
 * Offline verification of anchor exports and inclusion proofs: no database, no API, no
 * Temporal, no network. Imports only the pure Merkle library.
 */
export const PROOF_FORMAT = 'stella.inclusion-proof.v1';

export interface InclusionProofFile extends ExportedAnchor {
  inclusion: ExportedInclusion;
  proofFormat: typeof PROOF_FORMAT;
  evidence: { id: string; tenant: string; leafIndex: number /** base64 of the canonical leaf bytes */; leaf: string; decoded: EvidenceLeaf };
}

/**
 * What an offline verifier trusts: a pinned public key, or a RootPack the operator chose (the key
 * the anchor names must be listed there and not revoked). Never the key inside the export: whoever
 * can forge the export can forge that too.
 */
export type OfflineTrust = { jwk: JWK } | { rootpack: RootPack; fingerprint: string };

export interface OfflineVerifyOptions {
  trust: OfflineTrust;
  /** The evidence id the proof must be about. */
  evidenceId?: string;
  /** Leaf bytes from elsewhere that must be the proven leaf. */
  leaf?: Uint8Array;
}

export interface OfflineVerifyResult {
  ok: boolean;
  reason?: string;
  detail: string;
  anchorHash?: string;
  payload?: AnchorPayload;
  keySource?: 'pinned' | 'rootpack';
  keyThumbprint?: string;
  inclusion?: 'verified' | 'absent';
  leafIndex?: number;
  evidence?: EvidenceLeaf;
}

/** The trusted key for the kid the document claims, or why there is none. */
function trustedKeyFor(doc: unknown, trust: OfflineTrust): { jwk: JWK } | { error: string } {
  if ('jwk' in trust) return { jwk: trust.jwk };
  const kid = (doc as { payload?: { kid?: unknown } } | null)?.payload?.kid;
  const key = trust.rootpack.keys.find((k) => k.kid === kid);
  if (!key) return { error: `signed by key ${String(kid)}, which the trusted RootPack ${trust.fingerprint.slice(0, 19)}… does not list` };
  if (key.status === 'revoked') return { error: `signed by key ${key.kid}, which the trusted RootPack lists as revoked` };
  return { jwk: { ...key.publicJwk, kid: key.kid } };
}

export async function verifyOffline(doc: unknown, opts: OfflineVerifyOptions): Promise<OfflineVerifyResult> {
  const fail = (reason: string, detail: string): OfflineVerifyResult => ({ ok: false, reason, detail });
  if (!doc || typeof doc !== 'object') return fail('format', 'not a JSON object');
  const d = doc as Partial<InclusionProofFile>;
  let leaf = opts.leaf;
  let evidence: EvidenceLeaf | undefined;
  if (d.evidence !== undefined) {
    const e = d.evidence;
    if (!e || typeof e.leaf !== 'string' || typeof e.id !== 'string') return fail('format', 'evidence block is malformed');
    const bytes = Buffer.from(e.leaf, 'base64');
    try {
      evidence = decodeLeaf(bytes);
    } catch (err) {
      return fail('format', `evidence leaf is not a canonical leaf: ${(err as Error).message}`);
    }
    if (evidence.id !== e.id) return fail('inclusion', `the proven leaf is for ${evidence.id}, not ${e.id}`);
    if (d.inclusion && d.inclusion.leafIndex !== e.leafIndex) return fail('inclusion', 'evidence.leafIndex differs from the inclusion proof');
    if (leaf && !Buffer.from(leaf).equals(bytes)) return fail('inclusion', 'the given leaf file is not the leaf in this proof');
    leaf = bytes;
  }
  if (opts.evidenceId !== undefined) {
    if (!evidence) return fail('inclusion', `the file carries no evidence leaf, so it cannot prove ${opts.evidenceId}`);
    if (evidence.id !== opts.evidenceId) return fail('inclusion', `the proof is for ${evidence.id}, not ${opts.evidenceId}`);
  }
  const key = trustedKeyFor(doc, opts.trust);
  if ('error' in key) return fail('key', key.error);
  const r = await verifyExportedAnchor(doc, { leaf, pinnedJwk: key.jwk });
  if (!r.ok) return fail(r.reason, r.detail);
  const p = r.payload;
  const what = r.inclusion === 'verified' ? `leaf ${r.leafIndex}${evidence ? ` (${evidence.id})` : ''} is included in the tree of ${p.logSize} leaves; ` : '';
  return {
    ok: true,
    detail: `${what}anchor ${r.anchorHash.slice(0, 12)} (chain ${p.chainId.slice(0, 15)}, seq ${p.seq}) signature valid under the ${'jwk' in opts.trust ? 'pinned' : 'trusted RootPack'} key ${r.keyThumbprint.slice(0, 12)}`,
    anchorHash: r.anchorHash,
    payload: p,
    keySource: 'jwk' in opts.trust ? 'pinned' : 'rootpack',
    keyThumbprint: r.keyThumbprint,
    inclusion: r.inclusion,
    leafIndex: r.leafIndex,
    evidence,
  };
}

import { KeyObject } from 'node:crypto';
import { CompactSign, calculateJwkThumbprint, compactVerify, decodeProtectedHeader, type JWK, type KeyInput } from 'jose';
import { canonicalJson } from '../lib/canonical';
import { sha256Hex } from '../lib/hash';
import { HASH_SIZE, emptyRoot, hashEquals, hashFromHex, isHexHash, leafHash as leafHashOfBytes } from './hash';
import { verifyConsistency, verifyInclusion } from './tree';
import { MerkleError } from './errors';

/**
 * Signed, hash-linked anchors of the evidence log. Each anchor is a compact JWS over the
 * canonical JSON of { v, chainId, seq, logSize, rootHash, prevAnchorHash, createdAt, kid },
 * where prevAnchorHash = SHA-256 of the previous anchor's compact JWS string. Rewriting any
 * anchor therefore breaks either its signature or the link from its successor, and the Merkle
 * consistency between neighbours' roots shows the log itself was only ever appended to.
 */

export const ANCHOR_TYP = 'stella-anchor+jws';
export const ANCHOR_VERSION = 1;
export const EXPORT_FORMAT = 'stella.anchor-export.v1';

export type AnchorAlg = 'ES256' | 'EdDSA';
const ALGS: readonly AnchorAlg[] = ['ES256', 'EdDSA'];

export interface AnchorPayload {
  v: 1;
  chainId: string;
  seq: number;
  logSize: number;
  /** Lowercase hex of the RFC 6962 root over the first logSize leaves. */
  rootHash: string;
  /** Lowercase hex SHA-256 of the previous anchor's compact JWS; null only for seq 0. */
  prevAnchorHash: string | null;
  /** ISO-8601 UTC with milliseconds. */
  createdAt: string;
  kid: string;
}

export interface VerifiedAnchor {
  jws: string;
  payload: AnchorPayload;
  /** anchorHash(jws): the value the next anchor links to, and this anchor's id. */
  hash: string;
  alg: AnchorAlg;
}

export type AnchorErrorReason = 'format' | 'signature' | 'key';

const ANCHOR_CODE = { format: 'BAD_ANCHOR', signature: 'BAD_SIGNATURE', key: 'BAD_KEY' } as const;

/** A MerkleError about one anchor; `reason` is the anchor-level vocabulary verifiers report. */
export class AnchorError extends MerkleError {
  constructor(
    readonly reason: AnchorErrorReason,
    message: string,
  ) {
    super(ANCHOR_CODE[reason], message);
  }
}

/** SHA-256 (hex) of an anchor's compact JWS: its id and the value its successor links to. */
export function anchorHash(jws: string): string {
  return sha256Hex(Buffer.from(jws, 'utf8'));
}

/** The JWS alg implied by a signing or verification key: P-256 → ES256, Ed25519 → EdDSA. */
export function algForKey(key: KeyInput): AnchorAlg {
  if (key instanceof Uint8Array) throw new AnchorError('key', 'symmetric keys cannot sign anchors');
  if (key instanceof KeyObject) {
    if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
    if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  } else if ('kty' in key && typeof (key as JWK).kty === 'string') {
    const jwk = key as JWK;
    if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
    if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  } else if ('algorithm' in key) {
    const a = (key as { algorithm: { name?: string; namedCurve?: string } }).algorithm;
    if (a.name === 'Ed25519' || (a.name === 'EdDSA' && a.namedCurve === 'Ed25519')) return 'EdDSA';
    if (a.name === 'ECDSA' && a.namedCurve === 'P-256') return 'ES256';
  }
  throw new AnchorError('key', 'anchor keys must be ECDSA P-256 (ES256) or Ed25519 (EdDSA)');
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const PAYLOAD_KEYS = ['chainId', 'createdAt', 'kid', 'logSize', 'prevAnchorHash', 'rootHash', 'seq', 'v'];

function isIsoUtc(s: unknown): s is string {
  return typeof s === 'string' && ISO_RE.test(s) && !Number.isNaN(Date.parse(s)) && new Date(s).toISOString() === s;
}

function isShortString(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= 256;
}

/** Structural validation of a decoded payload; returns a reason string or undefined if valid. */
export function payloadProblem(p: unknown): string | undefined {
  if (!p || typeof p !== 'object' || Array.isArray(p)) return 'payload is not an object';
  const o = p as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  if (keys.length !== PAYLOAD_KEYS.length || keys.some((k, i) => k !== PAYLOAD_KEYS[i])) return `payload fields are ${keys.join(',')}`;
  if (o.v !== ANCHOR_VERSION) return `unsupported anchor version ${String(o.v)}`;
  if (!isShortString(o.chainId)) return 'chainId must be a non-empty string';
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0) return 'seq must be a non-negative integer';
  if (!Number.isSafeInteger(o.logSize) || (o.logSize as number) < 0) return 'logSize must be a non-negative integer';
  if (!isHexHash(o.rootHash)) return 'rootHash must be 64 lowercase hex characters';
  if (o.prevAnchorHash !== null && !isHexHash(o.prevAnchorHash)) return 'prevAnchorHash must be null or 64 lowercase hex characters';
  if (!isIsoUtc(o.createdAt)) return 'createdAt must be an ISO-8601 UTC timestamp with milliseconds';
  if (!isShortString(o.kid)) return 'kid must be a non-empty string';
  return undefined;
}

export interface AnchorSigner {
  /** Private key: CryptoKey, KeyObject or private JWK; P-256 or Ed25519. */
  key: KeyInput;
  kid: string;
}

export interface AnchorInput {
  chainId: string;
  seq: number;
  logSize: number;
  rootHash: Uint8Array | string;
  /** anchorHash() of the previous anchor in the chain; null for seq 0. */
  prevAnchorHash: string | null;
  /** Defaults to now. Pass it explicitly where determinism matters (e.g. Temporal replays). */
  createdAt?: Date | string;
}

/** Build and sign an anchor; returns its compact JWS. */
export async function signAnchor(input: AnchorInput, signer: AnchorSigner): Promise<string> {
  const alg = algForKey(signer.key);
  const rootHash = typeof input.rootHash === 'string' ? input.rootHash : Buffer.from(input.rootHash).toString('hex');
  if (typeof input.rootHash !== 'string' && input.rootHash.length !== HASH_SIZE) throw new AnchorError('format', 'rootHash must be 32 bytes');
  const created = input.createdAt === undefined ? new Date() : new Date(input.createdAt);
  if (Number.isNaN(created.getTime())) throw new AnchorError('format', 'createdAt is not a valid date');
  const payload: AnchorPayload = {
    v: ANCHOR_VERSION,
    chainId: input.chainId,
    seq: input.seq,
    logSize: input.logSize,
    rootHash,
    prevAnchorHash: input.prevAnchorHash,
    createdAt: created.toISOString(),
    kid: signer.kid,
  };
  const problem = payloadProblem(payload);
  if (problem) throw new AnchorError('format', problem);
  // Genesis rule, enforced at signing so a well-behaved signer can never produce a broken link.
  if ((payload.seq === 0) !== (payload.prevAnchorHash === null)) {
    throw new AnchorError('format', 'prevAnchorHash must be null exactly when seq is 0');
  }
  return new CompactSign(Buffer.from(canonicalJson(payload), 'utf8')).setProtectedHeader({ alg, kid: signer.kid, typ: ANCHOR_TYP }).sign(signer.key);
}

/** Resolves the public key for a kid; return undefined for an unknown kid. */
export type AnchorKeyResolver = (kid: string, alg: AnchorAlg) => Promise<KeyInput | undefined> | KeyInput | undefined;

/** Decode an anchor's payload WITHOUT verifying it (for diagnostics only). */
export function decodeAnchorUnverified(jws: string): Partial<AnchorPayload> | undefined {
  try {
    const part = jws.split('.')[1];
    if (!part) return undefined;
    const p = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    return p && typeof p === 'object' ? (p as Partial<AnchorPayload>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verify one anchor's signature and payload. Throws AnchorError ('format' for a malformed JWS
 * or payload, 'key' for an unknown/unsuitable key, 'signature' for a bad signature).
 */
export async function verifyAnchor(jws: string, keyResolver: AnchorKeyResolver): Promise<VerifiedAnchor> {
  if (typeof jws !== 'string' || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(jws)) {
    throw new AnchorError('format', 'not a compact JWS');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jws);
  } catch (e) {
    throw new AnchorError('format', `unreadable JWS header: ${(e as Error).message}`);
  }
  const alg = header.alg as AnchorAlg;
  if (!ALGS.includes(alg)) throw new AnchorError('format', `unsupported alg ${String(header.alg)}`);
  if (header.typ !== ANCHOR_TYP) throw new AnchorError('format', `unexpected typ ${String(header.typ)}`);
  if (!isShortString(header.kid)) throw new AnchorError('format', 'JWS header has no kid');
  if (header.crit !== undefined) throw new AnchorError('format', 'crit header parameters are not supported');

  const key = await keyResolver(header.kid, alg);
  if (key === undefined || key === null) throw new AnchorError('key', `unknown kid ${header.kid}`);
  if (algForKey(key) !== alg) throw new AnchorError('key', `key for kid ${header.kid} does not match alg ${alg}`);

  let payloadBytes: Uint8Array;
  try {
    ({ payload: payloadBytes } = await compactVerify(jws, key, { algorithms: [alg] }));
  } catch (e) {
    throw new AnchorError('signature', `signature verification failed: ${(e as Error).message}`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(payloadBytes).toString('utf8'));
  } catch {
    throw new AnchorError('format', 'payload is not JSON');
  }
  const problem = payloadProblem(payload);
  if (problem) throw new AnchorError('format', problem);
  // Signed bytes must be the canonical encoding, so an anchor has exactly one valid byte form.
  if (!Buffer.from(canonicalJson(payload), 'utf8').equals(Buffer.from(payloadBytes))) throw new AnchorError('format', 'payload is not canonical JSON');
  const p = payload as AnchorPayload;
  if (p.kid !== header.kid) throw new AnchorError('format', 'payload kid does not match JWS header kid');
  return { jws, payload: p, hash: anchorHash(jws), alg };
}

export type ChainBreakReason = 'signature' | 'link' | 'root-mismatch' | 'consistency' | 'sequence';

export interface ChainBreak {
  /** Position in the anchors array. */
  index: number;
  /** The anchor's seq (as claimed, if its signature could not be verified), or null if unreadable. */
  seq: number | null;
  /** anchorHash() of the offending anchor. */
  anchorId: string;
  reason: ChainBreakReason;
  detail: string;
}

export interface ChainResult {
  ok: boolean;
  /** Anchors that passed every check, i.e. the index of the first break when there is one. */
  checked: number;
  firstBreak?: ChainBreak;
  /** The last anchor that passed every check. */
  head?: VerifiedAnchor;
}

export interface ChainVerifyOptions {
  keyResolver: AnchorKeyResolver;
  /** Recompute the log root at a size from the log itself (e.g. rootFromSource). */
  recomputeRoot?: (logSize: number) => Promise<Uint8Array>;
  /** Produce a consistency proof between two log sizes (e.g. consistencyProofFromSource). */
  consistency?: (m: number, n: number) => Promise<Uint8Array[]>;
  /**
   * An already-verified anchor immediately before anchors[0], to check a suffix of a chain.
   * Without it anchors[0] must be the genesis anchor (seq 0, prevAnchorHash null).
   */
  previous?: VerifiedAnchor;
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Verify a chain of anchors in order and report the FIRST break. Per anchor the checks run in
 * this order: signature/format, sequence, link, root recomputation, consistency with the
 * previous anchor. Callback failures (e.g. the log cannot produce a root for logSize because
 * leaves are missing) count as breaks: verification fails closed.
 */
export async function verifyAnchorChain(anchors: readonly string[], opts: ChainVerifyOptions): Promise<ChainResult> {
  let prev: VerifiedAnchor | undefined = opts.previous;
  for (let index = 0; index < anchors.length; index++) {
    const jws = anchors[index]!;
    const id = typeof jws === 'string' ? anchorHash(jws) : '';
    const fail = (reason: ChainBreakReason, detail: string, seq?: number | null): ChainResult => {
      let s = seq;
      if (s === undefined) {
        const claimed = typeof jws === 'string' ? decodeAnchorUnverified(jws)?.seq : undefined;
        s = Number.isSafeInteger(claimed) ? (claimed as number) : null;
      }
      return { ok: false, checked: index, firstBreak: { index, seq: s, anchorId: id, reason, detail }, head: prev };
    };

    let cur: VerifiedAnchor;
    try {
      cur = await verifyAnchor(jws, opts.keyResolver);
    } catch (e) {
      return fail('signature', errMessage(e));
    }
    const p = cur.payload;

    // Sequence: contiguous from the previous anchor, or a genesis anchor at the start.
    if (prev) {
      if (p.seq !== prev.payload.seq + 1) return fail('sequence', `expected seq ${prev.payload.seq + 1}, got ${p.seq}`, p.seq);
    } else if (p.seq !== 0) {
      return fail('sequence', `chain starts at seq ${p.seq} but no previous anchor was supplied`, p.seq);
    }

    // Link: same chain, and prevAnchorHash commits to the exact previous anchor.
    if (prev) {
      if (p.chainId !== prev.payload.chainId) return fail('link', `chainId ${p.chainId} differs from previous ${prev.payload.chainId}`, p.seq);
      if (p.prevAnchorHash !== prev.hash) return fail('link', `prevAnchorHash ${String(p.prevAnchorHash)} does not match previous anchor ${prev.hash}`, p.seq);
    } else if (p.prevAnchorHash !== null) {
      return fail('link', 'genesis anchor has a prevAnchorHash', p.seq);
    }

    const root = hashFromHex(p.rootHash);
    if (opts.recomputeRoot) {
      let actual: Uint8Array;
      try {
        actual = await opts.recomputeRoot(p.logSize);
      } catch (e) {
        return fail('root-mismatch', `could not recompute root at size ${p.logSize}: ${errMessage(e)}`, p.seq);
      }
      if (!hashEquals(actual, root)) {
        return fail('root-mismatch', `log root at size ${p.logSize} is ${Buffer.from(actual).toString('hex')}, anchor says ${p.rootHash}`, p.seq);
      }
    } else if (p.logSize === 0 && !hashEquals(root, emptyRoot())) {
      return fail('root-mismatch', 'anchor of an empty log does not carry the empty-tree root', p.seq);
    }

    // Consistency: the log only grew between the two anchors. Size and equal-size checks are
    // free, so they run even without a proof callback.
    if (prev) {
      const m = prev.payload.logSize;
      const n = p.logSize;
      const prevRoot = hashFromHex(prev.payload.rootHash);
      if (n < m) return fail('consistency', `logSize shrank from ${m} to ${n}`, p.seq);
      if (n === m || m === 0) {
        if (!verifyConsistency(m, n, prevRoot, root, [])) return fail('consistency', `roots at sizes ${m} and ${n} are inconsistent`, p.seq);
      } else if (opts.consistency) {
        let proof: Uint8Array[];
        try {
          proof = await opts.consistency(m, n);
        } catch (e) {
          return fail('consistency', `could not get consistency proof ${m}→${n}: ${errMessage(e)}`, p.seq);
        }
        if (!verifyConsistency(m, n, prevRoot, root, proof)) {
          return fail('consistency', `consistency proof ${m}→${n} does not connect ${prev.payload.rootHash} to ${p.rootHash}`, p.seq);
        }
      }
    }
    prev = cur;
  }
  return { ok: true, checked: anchors.length, head: prev };
}

// ---------------------------------------------------------------------------------------------
// Offline export

export interface ExportedInclusion {
  leafIndex: number;
  /** Equal to the anchor's logSize. */
  treeSize: number;
  leafHash: string;
  proof: string[];
}

export interface ExportedAnchor {
  format: typeof EXPORT_FORMAT;
  /** The compact JWS; authoritative. */
  anchor: string;
  anchorHash: string;
  /** Public members only. */
  publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of publicJwk, for out-of-band key pinning. */
  keyThumbprint: string;
  /** Decoded payload, for human readers; verification checks it matches the JWS. */
  payload: AnchorPayload;
  inclusion?: ExportedInclusion;
}

export interface ExportInput {
  anchor: string;
  publicJwk: JWK;
  /** Inclusion proof of one leaf in the anchored tree; give the leaf hash or the leaf bytes. */
  inclusion?: { leafIndex: number; proof: readonly Uint8Array[]; leafHash?: Uint8Array; leaf?: Uint8Array };
}

/** Only public JWK members leave the building, whatever the caller passed in. */
function publicJwkOf(jwk: JWK): JWK {
  if (!jwk || typeof jwk !== 'object') throw new AnchorError('key', 'publicJwk must be a JWK object');
  const out: JWK = { kty: jwk.kty };
  if (jwk.kty === 'EC') Object.assign(out, { crv: jwk.crv, x: jwk.x, y: jwk.y });
  else if (jwk.kty === 'OKP') Object.assign(out, { crv: jwk.crv, x: jwk.x });
  else throw new AnchorError('key', `unsupported key type ${String(jwk.kty)}`);
  if (typeof jwk.kid === 'string') out.kid = jwk.kid;
  algForKey(out);
  return out;
}

/**
 * Build a self-contained, offline-verifiable export of one anchor, optionally with an
 * inclusion proof of one leaf in the anchored tree. The signature and proof are checked
 * before export so a broken bundle is never handed out.
 */
export async function exportAnchor(input: ExportInput): Promise<ExportedAnchor> {
  const publicJwk = publicJwkOf(input.publicJwk);
  const verified = await verifyAnchor(input.anchor, () => publicJwk);
  const out: ExportedAnchor = {
    format: EXPORT_FORMAT,
    anchor: input.anchor,
    anchorHash: verified.hash,
    publicJwk,
    keyThumbprint: await calculateJwkThumbprint(publicJwk, 'sha256'),
    payload: verified.payload,
  };
  if (input.inclusion) {
    const { leafIndex, proof } = input.inclusion;
    const leafHash = input.inclusion.leafHash ?? (input.inclusion.leaf ? leafHashOfBytes(input.inclusion.leaf) : undefined);
    if (!leafHash) throw new AnchorError('format', 'inclusion needs leafHash or leaf');
    if (input.inclusion.leaf && input.inclusion.leafHash && !hashEquals(leafHashOfBytes(input.inclusion.leaf), input.inclusion.leafHash)) {
      throw new AnchorError('format', 'inclusion leaf and leafHash disagree');
    }
    const root = hashFromHex(verified.payload.rootHash);
    if (!verifyInclusion(leafHash, leafIndex, verified.payload.logSize, proof, root)) {
      throw new AnchorError('format', `inclusion proof for leaf ${leafIndex} does not verify against the anchored root`);
    }
    out.inclusion = {
      leafIndex,
      treeSize: verified.payload.logSize,
      leafHash: Buffer.from(leafHash).toString('hex'),
      proof: proof.map((h) => Buffer.from(h).toString('hex')),
    };
  }
  return out;
}

export type ExportVerifyReason = 'format' | 'key' | 'signature' | 'inclusion';

export type ExportVerifyResult =
  | {
      ok: true;
      payload: AnchorPayload;
      anchorHash: string;
      keyThumbprint: string;
      /** 'pinned' when the caller supplied the key or its thumbprint; 'embedded' proves only self-consistency. */
      keySource: 'pinned' | 'embedded';
      inclusion: 'verified' | 'absent';
      leafIndex?: number;
    }
  | { ok: false; reason: ExportVerifyReason; detail: string };

export interface ExportVerifyOptions {
  /** Leaf bytes (hashed with the RFC 6962 leaf prefix) that must be proven included. */
  leaf?: Uint8Array;
  /** Or the leaf hash directly. */
  leafHash?: Uint8Array;
  /** Trusted public key; must be the embedded key (compared by thumbprint). */
  pinnedJwk?: JWK;
  /** Trusted RFC 7638 thumbprint of the signing key. */
  pinnedThumbprint?: string;
}

/**
 * Verify an exported anchor with no network or database: signature under the embedded or
 * pinned key, internal consistency of the bundle, and optionally a leaf's inclusion.
 */
export async function verifyExportedAnchor(json: string | unknown, opts: ExportVerifyOptions = {}): Promise<ExportVerifyResult> {
  const parsed = parseExport(json);
  if (!parsed.ok) return parsed;
  const { e } = parsed;
  const key = await embeddedKey(e);
  if (!key.ok) return key;
  const pin = await pinnedKeySource(key.thumbprint, opts);
  if (!pin.ok) return pin;
  const signed = await signedAnchor(e, key.publicJwk);
  if (!signed.ok) return signed;
  const { verified } = signed;
  const inc = exportInclusion(e.inclusion, verified.payload, opts);
  if (!inc.ok) return inc;
  return {
    ok: true,
    payload: verified.payload,
    anchorHash: verified.hash,
    keyThumbprint: key.thumbprint,
    keySource: pin.keySource,
    inclusion: inc.inclusion,
    ...(inc.leafIndex !== undefined ? { leafIndex: inc.leafIndex } : {}),
  };
}

type ExportFailure = Extract<ExportVerifyResult, { ok: false }>;
/** A verification step's outcome: its findings, or why the export fails. */
type ExportStep<T> = ({ ok: true } & T) | ExportFailure;

const exportFailure = (reason: ExportVerifyReason, detail: string): ExportFailure => ({ ok: false, reason, detail });

/** The export document: JSON, our format, with an anchor string. */
function parseExport(json: string | unknown): ExportStep<{ e: Partial<ExportedAnchor> & { anchor: string } }> {
  let doc: unknown = json;
  if (typeof json === 'string') {
    try {
      doc = JSON.parse(json);
    } catch {
      return exportFailure('format', 'export is not JSON');
    }
  }
  if (!doc || typeof doc !== 'object') return exportFailure('format', 'export is not an object');
  const e = doc as Partial<ExportedAnchor>;
  if (e.format !== EXPORT_FORMAT) return exportFailure('format', `unknown export format ${String(e.format)}`);
  if (typeof e.anchor !== 'string') return exportFailure('format', 'export has no anchor');
  return { ok: true, e: e as Partial<ExportedAnchor> & { anchor: string } };
}

/** The embedded public key (never private material) and its thumbprint, which must be the one the export states. */
async function embeddedKey(e: Partial<ExportedAnchor>): Promise<ExportStep<{ publicJwk: JWK; thumbprint: string }>> {
  let publicJwk: JWK;
  let thumbprint: string;
  try {
    if (e.publicJwk && typeof e.publicJwk === 'object' && 'd' in e.publicJwk) return exportFailure('key', 'embedded key contains private material');
    publicJwk = publicJwkOf(e.publicJwk as JWK);
    thumbprint = await calculateJwkThumbprint(publicJwk, 'sha256');
  } catch (err) {
    return exportFailure('key', `embedded key is unusable: ${errMessage(err)}`);
  }
  if (e.keyThumbprint !== thumbprint) return exportFailure('format', 'keyThumbprint does not match the embedded key');
  return { ok: true, publicJwk, thumbprint };
}

/** 'pinned' when the embedded key matches every pin the caller gave (thumbprint, then key); 'embedded' without pins. */
async function pinnedKeySource(thumbprint: string, opts: ExportVerifyOptions): Promise<ExportStep<{ keySource: 'pinned' | 'embedded' }>> {
  let keySource: 'pinned' | 'embedded' = 'embedded';
  if (opts.pinnedThumbprint !== undefined) {
    if (opts.pinnedThumbprint !== thumbprint) return exportFailure('key', 'embedded key does not match the pinned thumbprint');
    keySource = 'pinned';
  }
  if (opts.pinnedJwk !== undefined) {
    let pinned: string;
    try {
      pinned = await calculateJwkThumbprint(publicJwkOf(opts.pinnedJwk), 'sha256');
    } catch (err) {
      return exportFailure('key', `pinned key is unusable: ${errMessage(err)}`);
    }
    if (pinned !== thumbprint) return exportFailure('key', 'embedded key is not the pinned key');
    keySource = 'pinned';
  }
  return { ok: true, keySource };
}

/** The anchor's signature under the key, and the export's anchorHash and decoded payload against it. */
async function signedAnchor(e: Partial<ExportedAnchor> & { anchor: string }, publicJwk: JWK): Promise<ExportStep<{ verified: VerifiedAnchor }>> {
  let verified: VerifiedAnchor;
  try {
    verified = await verifyAnchor(e.anchor, () => publicJwk);
  } catch (err) {
    const reason = err instanceof AnchorError ? (err.reason === 'signature' ? 'signature' : err.reason === 'key' ? 'key' : 'format') : 'signature';
    return exportFailure(reason, errMessage(err));
  }
  if (e.anchorHash !== verified.hash) return exportFailure('format', 'anchorHash does not match the anchor');
  if (!e.payload || canonicalJson(e.payload) !== canonicalJson(verified.payload))
    return exportFailure('format', 'decoded payload does not match the signed payload');
  return { ok: true, verified };
}

/** The export's inclusion proof, if any, for the leaf the caller asked about (if any), under the signed root. */
function exportInclusion(
  inc: ExportedInclusion | undefined,
  p: AnchorPayload,
  opts: ExportVerifyOptions,
): ExportStep<{ inclusion: 'verified' | 'absent'; leafIndex?: number }> {
  const wanted = opts.leaf !== undefined ? leafHashOfBytes(opts.leaf) : opts.leafHash;
  if (wanted !== undefined && opts.leaf !== undefined && opts.leafHash !== undefined && !hashEquals(wanted, opts.leafHash)) {
    return exportFailure('inclusion', 'leaf and leafHash options disagree');
  }
  if (inc === undefined) {
    if (wanted !== undefined) return exportFailure('inclusion', 'a leaf was given but the export carries no inclusion proof');
    return { ok: true, inclusion: 'absent' };
  }
  if (
    !inc ||
    typeof inc !== 'object' ||
    !Number.isSafeInteger(inc.leafIndex) ||
    inc.treeSize !== p.logSize ||
    !isHexHash(inc.leafHash) ||
    !Array.isArray(inc.proof) ||
    !inc.proof.every(isHexHash)
  ) {
    return exportFailure('inclusion', 'malformed inclusion proof (or its treeSize differs from the anchored logSize)');
  }
  const lh = Buffer.from(inc.leafHash, 'hex');
  if (wanted !== undefined && !hashEquals(wanted, lh)) return exportFailure('inclusion', 'the inclusion proof is for a different leaf');
  const proof = inc.proof.map((h) => Buffer.from(h, 'hex'));
  if (!verifyInclusion(lh, inc.leafIndex, p.logSize, proof, hashFromHex(p.rootHash))) {
    return exportFailure('inclusion', `inclusion proof for leaf ${inc.leafIndex} does not verify against root ${p.rootHash}`);
  }
  return { ok: true, inclusion: 'verified', leafIndex: inc.leafIndex };
}

import { createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { CryptoError } from './errors';

/**
 * DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse).
 *
 * Signature encoding: ES256 signatures are ASN.1 DER ECDSA signatures over SHA-256(PAE),
 * not the JOSE raw r||s form. That is what cosign, in-toto-golang and sigstore-js emit
 * and expect inside DSSE, so envelopes stay verifiable by that tooling. Ed25519 signs PAE
 * directly (pure EdDSA). Signing and verification use node:crypto; keys travel as JWKs.
 */

export type SigAlg = 'ES256' | 'EdDSA';
export const SIG_ALGS: readonly SigAlg[] = ['ES256', 'EdDSA'];

export type KeyStatus = 'active' | 'retired' | 'revoked';

/** Anything that can produce a DSSE signature. Async so KMS/HSM-backed signers fit. */
export interface Signer {
  readonly keyid: string;
  readonly alg: SigAlg;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * What a trust callback knows about a key id. Omitted window/status fields mean
 * "no restriction" — callers that return a key from a bare map trust it unconditionally.
 */
export interface KeyInfo {
  alg: SigAlg;
  publicJwk: JWK;
  notBefore?: string | null;
  notAfter?: string | null;
  status?: KeyStatus;
}

/**
 * Trust callback: the key a key id names. `candidates`, when present, lists the keys a
 * signature without a key id (cosign writes `keyid: ""`) may be tried against — bounded by
 * MAX_KEYLESS_CANDIDATES; a resolver without it never accepts such a signature.
 */
export interface TrustResolver {
  (keyid: string): KeyInfo | undefined;
  candidates?: () => Iterable<readonly [string, KeyInfo]>;
}

/** How many trusted keys a signature without a key id is tried against, at most. */
export const MAX_KEYLESS_CANDIDATES = 64;

/**
 * One resolver over several sources (resolvers or kid → key maps), first match wins; the
 * candidates of a signature without a key id are the union of theirs, each kid once.
 */
export function combineTrust(...sources: (TrustResolver | ReadonlyMap<string, KeyInfo>)[]): TrustResolver {
  const lookup = (kid: string): KeyInfo | undefined => {
    for (const s of sources) {
      const k = typeof s === 'function' ? s(kid) : s.get(kid);
      if (k) return k;
    }
    return undefined;
  };
  const resolver: TrustResolver = Object.assign(lookup, {
    candidates: function* (): Iterable<readonly [string, KeyInfo]> {
      const seen = new Set<string>();
      for (const s of sources) {
        const it = typeof s === 'function' ? (s.candidates?.() ?? []) : s.entries();
        for (const [kid, info] of it) {
          if (seen.has(kid)) continue;
          seen.add(kid);
          // Through lookup, so an earlier source's view of the kid (its window, status) wins.
          yield [kid, lookup(kid) ?? info] as const;
        }
      }
    },
  });
  return resolver;
}

export interface EnvelopeSignature {
  keyid: string;
  sig: string;
}

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: EnvelopeSignature[];
}

export interface SignatureCheck {
  /** The key id of the key that checked the signature: the envelope's, or the matching trusted key's when the envelope gave none. */
  keyid: string;
  /** Present when the envelope's signature carried no key id (cosign's `keyid: ""`) and the key was found among the trusted candidates. */
  matchedBy?: 'candidate';
  /** The signature verifies cryptographically against the key the resolver returned. */
  valid: boolean;
  /** The key is known and within its validity window at the verification time. */
  trusted: boolean;
  reason: string;
}

export interface VerifyResult {
  /** At least one signature is both valid and trusted. */
  ok: boolean;
  payload: Uint8Array;
  payloadType: string;
  signatures: SignatureCheck[];
}

const enc = new TextEncoder();

/** Pre-Authentication Encoding: binds payloadType into what is signed. Lengths are byte lengths. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = enc.encode(payloadType);
  const head = enc.encode(`DSSEv1 ${type.byteLength} `);
  const mid = enc.encode(` ${payload.byteLength} `);
  const out = new Uint8Array(head.byteLength + type.byteLength + mid.byteLength + payload.byteLength);
  out.set(head, 0);
  out.set(type, head.byteLength);
  out.set(mid, head.byteLength + type.byteLength);
  out.set(payload, head.byteLength + type.byteLength + mid.byteLength);
  return out;
}

/** Low-level signature over arbitrary bytes with a node KeyObject, in DSSE's encoding. */
export function rawSign(alg: SigAlg, key: KeyObject, data: Uint8Array): Uint8Array {
  assertKeyMatchesAlg(alg, key);
  const sig = alg === 'ES256' ? nodeSign('sha256', data, { key, dsaEncoding: 'der' }) : nodeSign(null, data, key);
  return new Uint8Array(sig);
}

export function rawVerify(alg: SigAlg, key: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  assertKeyMatchesAlg(alg, key);
  try {
    return alg === 'ES256' ? nodeVerify('sha256', data, { key, dsaEncoding: 'der' }, sig) : nodeVerify(null, data, key, sig);
  } catch {
    // Malformed DER makes OpenSSL throw rather than return false; either way it is not a valid signature.
    return false;
  }
}

/** Refuse key/alg mismatches up front so a P-256 key can never be used as if it were Ed25519 or vice versa. */
export function assertKeyMatchesAlg(alg: SigAlg, key: KeyObject): void {
  if (alg === 'ES256') {
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new CryptoError('KEY_ALG_MISMATCH', 'ES256 requires a P-256 EC key', { keyType: key.asymmetricKeyType });
    }
  } else if (alg === 'EdDSA') {
    if (key.asymmetricKeyType !== 'ed25519') throw new CryptoError('KEY_ALG_MISMATCH', 'EdDSA requires an Ed25519 key', { keyType: key.asymmetricKeyType });
  } else {
    throw new CryptoError('UNSUPPORTED_ALG', `unsupported signature algorithm ${String(alg)}`);
  }
}

/** Imported public keys by their public members (a KeyObject is immutable); bounded, oldest dropped first. */
const importedKeys = new Map<string, KeyObject>();
const MAX_IMPORTED_KEYS = 512;

/**
 * Public KeyObject from a JWK; private members, if present, are ignored. Imported once per key
 * (the import costs more than an Ed25519 verification; gates and verify check the same few keys).
 */
export function publicKeyFromJwk(jwk: JWK): KeyObject {
  const { kty, crv, x, y } = jwk;
  const pub: Record<string, string> = {};
  for (const [k, v] of Object.entries({ kty, crv, x, y })) if (typeof v === 'string') pub[k] = v;
  const id = JSON.stringify(pub);
  const hit = importedKeys.get(id);
  if (hit) return hit;
  const key = createPublicKey({ key: pub, format: 'jwk' });
  if (importedKeys.size >= MAX_IMPORTED_KEYS) importedKeys.delete(importedKeys.keys().next().value!);
  importedKeys.set(id, key);
  return key;
}

export async function signEnvelope(payloadType: string, payload: Uint8Array, signers: Signer[]): Promise<Envelope> {
  if (signers.length === 0) throw new CryptoError('INVALID_ARGUMENT', 'signEnvelope needs at least one signer');
  const message = pae(payloadType, payload);
  const signatures: EnvelopeSignature[] = [];
  for (const s of signers) {
    const sig = await s.sign(message);
    signatures.push({ keyid: s.keyid, sig: Buffer.from(sig).toString('base64') });
  }
  return { payloadType, payload: Buffer.from(payload).toString('base64'), signatures };
}

// DSSE allows standard or URL-safe base64; reject anything else instead of letting Buffer skip junk.
const B64_RE = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;

function decodeB64(s: string, field: string): Uint8Array {
  if (!B64_RE.test(s) || s.replace(/=+$/, '').length % 4 === 1) throw new CryptoError('MALFORMED_ENVELOPE', `envelope ${field} is not valid base64`);
  return new Uint8Array(Buffer.from(s, s.includes('-') || s.includes('_') ? 'base64url' : 'base64'));
}

/** Structural validation of an untrusted envelope (from JSON or an object). Throws BAD_INPUT. */
export function parseEnvelope(input: unknown): Envelope {
  const obj = typeof input === 'string' || input instanceof Uint8Array ? parseJson(input) : input;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new CryptoError('MALFORMED_ENVELOPE', 'envelope must be a JSON object');
  const e = obj as Record<string, unknown>;
  if (typeof e.payloadType !== 'string') throw new CryptoError('MALFORMED_ENVELOPE', 'envelope payloadType must be a string');
  if (typeof e.payload !== 'string') throw new CryptoError('MALFORMED_ENVELOPE', 'envelope payload must be a base64 string');
  if (!Array.isArray(e.signatures)) throw new CryptoError('MALFORMED_ENVELOPE', 'envelope signatures must be an array');
  const signatures = e.signatures.map((s, i) => {
    if (typeof s !== 'object' || s === null) throw new CryptoError('MALFORMED_ENVELOPE', `envelope signature ${i} must be an object`);
    const { keyid, sig } = s as Record<string, unknown>;
    if (typeof sig !== 'string') throw new CryptoError('MALFORMED_ENVELOPE', `envelope signature ${i} sig must be a string`);
    if (keyid !== undefined && typeof keyid !== 'string') throw new CryptoError('MALFORMED_ENVELOPE', `envelope signature ${i} keyid must be a string`);
    return { keyid: keyid ?? '', sig };
  });
  decodeB64(e.payload, 'payload');
  return { payloadType: e.payloadType, payload: e.payload, signatures };
}

/** Decoded payload bytes of a structurally valid envelope (no signature check). */
export function envelopePayload(env: Envelope): Uint8Array {
  return decodeB64(env.payload, 'payload');
}

function parseJson(input: string | Uint8Array): unknown {
  try {
    return JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
  } catch {
    throw new CryptoError('MALFORMED_ENVELOPE', 'envelope is not valid JSON');
  }
}

/** Is a key usable at `at` according to its status and validity window? Shared with rootpack.trustAt. */
export function keyTrustAt(info: Pick<KeyInfo, 'notBefore' | 'notAfter' | 'status'>, at: Date): { trusted: boolean; reason: string } {
  const t = at.getTime();
  if (Number.isNaN(t)) return { trusted: false, reason: 'invalid verification time' };
  if (info.status === 'revoked') return { trusted: false, reason: 'key revoked' };
  if (info.status === 'retired' && !info.notAfter) return { trusted: false, reason: 'retired key has no notAfter' };
  if (info.notBefore) {
    const nb = Date.parse(info.notBefore);
    if (Number.isNaN(nb)) return { trusted: false, reason: 'key notBefore unparseable' };
    if (t < nb) return { trusted: false, reason: `time ${at.toISOString()} is before key notBefore ${info.notBefore}` };
  }
  if (info.notAfter) {
    const na = Date.parse(info.notAfter);
    if (Number.isNaN(na)) return { trusted: false, reason: 'key notAfter unparseable' };
    if (t > na) return { trusted: false, reason: `time ${at.toISOString()} is after key notAfter ${info.notAfter}` };
  }
  return { trusted: true, reason: 'key within validity window' };
}

/**
 * Verify every signature of an envelope. `at` is the time the signature is asserted to
 * have been made (default: now). It must come from a source the verifier trusts (e.g. the
 * locker's ingestion record), never from the signed payload: otherwise a leaked retired
 * key could backdate new signatures into its old window.
 * Malformed envelopes throw BAD_INPUT; bad or untrusted signatures are reported, not thrown.
 */
export function verifyEnvelope(env: Envelope | unknown, trust: TrustResolver, at: Date = new Date()): VerifyResult {
  const e = parseEnvelope(env);
  const payload = decodeB64(e.payload, 'payload');
  const message = pae(e.payloadType, payload);
  const signatures = e.signatures.map((s): SignatureCheck => checkOne(s, message, trust, at));
  return { ok: signatures.some((s) => s.valid && s.trusted), payload, payloadType: e.payloadType, signatures };
}

function checkOne(s: EnvelopeSignature, message: Uint8Array, trust: TrustResolver, at: Date): SignatureCheck {
  const keyid = s.keyid;
  let sig: Uint8Array;
  try {
    sig = decodeB64(s.sig, 'sig');
  } catch {
    return { keyid, valid: false, trusted: false, reason: 'signature is not valid base64' };
  }
  if (!keyid) return checkWithoutKeyid(sig, message, trust, at);
  const info = trust(keyid);
  if (!info) return { keyid, valid: false, trusted: false, reason: 'unknown key' };
  let valid: boolean;
  try {
    valid = rawVerify(info.alg, publicKeyFromJwk(info.publicJwk), message, sig);
  } catch (err) {
    return { keyid, valid: false, trusted: false, reason: `unusable key: ${(err as Error).message}` };
  }
  const window = keyTrustAt(info, at);
  if (!valid) return { keyid, valid: false, trusted: window.trusted, reason: 'signature does not verify' };
  return { keyid, valid: true, trusted: window.trusted, reason: window.reason };
}

/**
 * A signature without a key id (cosign's envelopes) is tried against the trusted candidates,
 * at most MAX_KEYLESS_CANDIDATES of them; the first key it verifies under names the signer.
 * A key within its window is preferred over one that verifies but is no longer trusted.
 */
function checkWithoutKeyid(sig: Uint8Array, message: Uint8Array, trust: TrustResolver, at: Date): SignatureCheck {
  if (!trust.candidates) return { keyid: '', valid: false, trusted: false, reason: 'signature has no keyid and no trusted keys to try' };
  let tried = 0;
  let untrusted: SignatureCheck | undefined;
  for (const [kid, info] of trust.candidates()) {
    if (tried++ >= MAX_KEYLESS_CANDIDATES) break;
    let valid = false;
    try {
      valid = rawVerify(info.alg, publicKeyFromJwk(info.publicJwk), message, sig);
    } catch {
      continue; // an unusable candidate key is simply not the signer
    }
    if (!valid) continue;
    const window = keyTrustAt(info, at);
    const check: SignatureCheck = { keyid: kid, matchedBy: 'candidate', valid: true, trusted: window.trusted, reason: window.reason };
    if (window.trusted) return check;
    untrusted ??= check;
  }
  if (untrusted) return untrusted;
  const bound = tried > MAX_KEYLESS_CANDIDATES ? ` (only the first ${MAX_KEYLESS_CANDIDATES} tried)` : '';
  return {
    keyid: '',
    valid: false,
    trusted: false,
    reason: `signature has no keyid and verifies under none of the ${Math.min(tried, MAX_KEYLESS_CANDIDATES)} trusted keys${bound}`,
  };
}

/**
 * RFC 9449 DPoP: making and checking proofs. jose does the JWS and the JWK thumbprint; this file
 * does the RFC's checks (§4.3) in order, the replay cache and server nonces (§8).
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { base64url, calculateJwkThumbprint, EmbeddedJWK, errors as joseErrors, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { CryptoError } from './errors';

export const DPOP_TYP = 'dpop+jwt';
/** Asymmetric algorithms accepted in proofs (the WWW-Authenticate `algs`). */
export const DPOP_ALGS = ['ES256', 'EdDSA'] as const;

/** `invalid_dpop_proof` for a bad proof, `use_dpop_nonce` when the server wants (another) nonce. */
export type DpopErrorKind = 'invalid_dpop_proof' | 'use_dpop_nonce';

export class DpopError extends CryptoError {
  constructor(
    readonly kind: DpopErrorKind,
    message: string,
  ) {
    super('BAD_DPOP', message, { reason: kind });
  }
}

/** `ath`: base64url(SHA-256(access token)). */
export function accessTokenHash(token: string): string {
  return base64url.encode(createHash('sha256').update(token, 'ascii').digest());
}

/** The RFC 7638 SHA-256 thumbprint of a public JWK (`cnf.jkt`). */
export function jwkThumbprint(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}

/**
 * `htu` as compared (§4.3 step 9): scheme, host and path, normalized per RFC 3986 §6 (lower-case
 * scheme and host, default port dropped), without query and fragment. Undefined if not a URL.
 */
export function normalizeHtu(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  return `${u.protocol}//${u.host}${u.pathname}`; // URL already lower-cases and drops default ports
}

export interface DpopSigner {
  privateKey: CryptoKey;
  publicJwk: JWK;
  alg: (typeof DPOP_ALGS)[number];
}

/** A proof for one request: `htu` is the URL without query and fragment; `ath` when a token goes along. */
export async function createDpopProof(
  key: DpopSigner,
  req: { method: string; url: string; accessToken?: string; nonce?: string; now?: Date },
): Promise<string> {
  const htu = normalizeHtu(req.url);
  if (!htu) throw new CryptoError('INVALID_ARGUMENT', `DPoP htu must be an http(s) URL, got ${req.url}`);
  const { kty, crv, x, y } = key.publicJwk;
  const jwk = Object.fromEntries(Object.entries({ kty, crv, x, y }).filter(([, v]) => v !== undefined));
  const claims: JWTPayload = { htm: req.method.toUpperCase(), htu };
  if (req.accessToken) claims.ath = accessTokenHash(req.accessToken);
  if (req.nonce) claims.nonce = req.nonce;
  return new SignJWT(claims)
    .setProtectedHeader({ typ: DPOP_TYP, alg: key.alg, jwk })
    .setJti(randomUUID())
    .setIssuedAt(Math.floor((req.now ?? new Date()).getTime() / 1000))
    .sign(key.privateKey);
}

export interface ProofCheck {
  method: string;
  /** The request URL as the client addressed it (public base URL + path). */
  url: string;
  /** The access token sent with the proof: its hash must be the proof's `ath`. */
  accessToken?: string;
  /** Proofs older or newer than this many seconds are refused (and jtis are remembered this long). */
  iatWindowSeconds: number;
  /** When set, the proof must carry a nonce this accepts. */
  nonce?: (n: string) => boolean;
  now?: Date;
}

export interface VerifiedProof {
  jkt: string;
  jti: string;
  iat: number;
}

/** §4.3 checks 2–12 (the caller checks there is one DPoP header, the jti cache and the cnf.jkt binding). */
export async function verifyDpopProof(proof: string, check: ProofCheck): Promise<VerifiedProof> {
  const bad = (m: string) => new DpopError('invalid_dpop_proof', m);
  if (typeof proof !== 'string' || proof.split('.').length !== 3) throw bad('DPoP proof is not a compact JWS');
  let payload: JWTPayload;
  let jwk: JWK;
  try {
    const r = await jwtVerify(proof, EmbeddedJWK, { typ: DPOP_TYP, algorithms: [...DPOP_ALGS], requiredClaims: ['jti', 'iat'] });
    payload = r.payload;
    jwk = r.protectedHeader.jwk as JWK;
  } catch (e) {
    if (e instanceof joseErrors.JOSEAlgNotAllowed) throw bad(`DPoP proof algorithm not allowed (use ${DPOP_ALGS.join(' or ')})`);
    throw bad(`DPoP proof rejected: ${(e as Error).message}`);
  }
  if ('d' in jwk) throw bad('DPoP proof jwk contains a private key');
  const { htm, htu, jti, iat, ath, nonce } = payload as JWTPayload & { htm?: unknown; htu?: unknown; ath?: unknown; nonce?: unknown };
  if (typeof jti !== 'string' || jti.length < 8 || jti.length > 256) throw bad('DPoP proof jti missing or malformed');
  if (typeof htm !== 'string' || htm !== check.method.toUpperCase()) throw bad(`DPoP proof htm ${String(htm)} does not match ${check.method.toUpperCase()}`);
  const want = normalizeHtu(check.url);
  if (typeof htu !== 'string' || !want || normalizeHtu(htu) !== want) throw bad(`DPoP proof htu ${String(htu)} does not match ${want}`);
  const now = Math.floor((check.now ?? new Date()).getTime() / 1000);
  if (typeof iat !== 'number' || Math.abs(now - iat) > check.iatWindowSeconds) throw bad(`DPoP proof iat is outside the ${check.iatWindowSeconds}s window`);
  if (check.nonce && (typeof nonce !== 'string' || !check.nonce(nonce)))
    throw new DpopError('use_dpop_nonce', 'the DPoP proof needs the nonce this server issued (DPoP-Nonce)');
  if (check.accessToken !== undefined) {
    if (typeof ath !== 'string') throw bad('DPoP proof has no ath for the access token');
    const a = Buffer.from(ath);
    const b = Buffer.from(accessTokenHash(check.accessToken));
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw bad('DPoP proof ath does not match the access token');
  }
  return { jkt: await jwkThumbprint(jwk), jti, iat };
}

/**
 * Seen proof jtis, each remembered for the iat window (a proof older than that is refused on iat
 * anyway). In-process and bounded: with several API processes a proof could be replayed once per
 * process within the window; when full, the oldest entries are dropped.
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  constructor(
    private readonly ttlSeconds: number,
    private readonly max = 100_000,
  ) {}

  /** False when `jti` was already seen within the window (a replay); records it otherwise. */
  add(jti: string, nowMs = Date.now()): boolean {
    this.sweep(nowMs);
    if (this.seen.has(jti)) return false;
    this.seen.set(jti, nowMs + this.ttlSeconds * 1000);
    while (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value as string);
    return true;
  }

  private sweep(nowMs: number): void {
    for (const [k, exp] of this.seen) {
      if (exp > nowMs) break; // insertion order = expiry order
      this.seen.delete(k);
    }
  }
}

/**
 * Server nonces (§8) without server state: a timestamp and its HMAC under a per-process secret.
 * A nonce is valid for `ttlSeconds`; the server hands out a fresh one in `DPoP-Nonce`.
 */
export class DpopNonces {
  constructor(
    private readonly ttlSeconds: number,
    private readonly secret: Buffer = randomBytes(32),
  ) {}

  issue(nowMs = Date.now()): string {
    const ts = Buffer.alloc(8);
    ts.writeBigUInt64BE(BigInt(Math.floor(nowMs / 1000)));
    return base64url.encode(Buffer.concat([ts, this.mac(ts)]));
  }

  valid(nonce: string, nowMs = Date.now()): boolean {
    let raw: Uint8Array;
    try {
      raw = base64url.decode(nonce);
    } catch {
      return false;
    }
    if (raw.length !== 8 + 32) return false;
    const ts = Buffer.from(raw.subarray(0, 8));
    if (!timingSafeEqual(Buffer.from(raw.subarray(8)), this.mac(ts))) return false;
    const age = Math.floor(nowMs / 1000) - Number(ts.readBigUInt64BE());
    return age >= -5 && age <= this.ttlSeconds;
  }

  private mac(ts: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(ts).digest();
  }
}

import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { CryptoError } from './errors';
import { KeyStore, type KeySigner } from './keys';

/**
 * API access tokens: JWTs (RFC 9068 profile) signed with a key-store key.
 * iss "stella", aud "stella-api", typ "at+jwt" (so an ID token or any other JWT signed by
 * the same key cannot be replayed as an access token), scopes in the space-separated
 * `scope` claim, tenant in a private `tenant` claim, and for sender-constrained tokens the
 * RFC 9449 `cnf.jkt` (usable only with DPoP proofs by that key; see ./dpop.ts).
 */

export const TOKEN_ISSUER = 'stella';
export const TOKEN_AUDIENCE = 'stella-api';
export const TOKEN_TYP = 'at+jwt';
export const SCOPES = ['evidence:read', 'evidence:write', 'promotion:read', 'promotion:write', 'policy:admin', 'replay:read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
const SCOPE_SET: ReadonlySet<string> = new Set(SCOPES);
/**
 * Longest lifetime stella issues (24 hours): revocation lists and retired keys need only be kept
 * this long, and a leaked token is useful for a day at most. Defaults are shorter (1 hour).
 */
export const MAX_TTL_SECONDS = 24 * 3600;
export const DEFAULT_TTL_SECONDS = 3600;

export function isScope(s: string): s is Scope {
  return SCOPE_SET.has(s);
}

export type TokenErrorKind =
  | 'missing' // no token presented
  | 'malformed' // not a compact JWS / JSON / missing kid
  | 'expired' // exp in the past
  | 'not_yet_valid' // nbf/iat in the future
  | 'invalid_signature' // forged, unknown key, or disallowed alg
  | 'invalid_claims'; // wrong iss/aud/typ or missing sub/tenant/scope

/** Typed verification failure; the API maps every kind to 401 and logs `kind`. */
/** A bearer token that does not authenticate anyone; `kind` says why (the API puts it in the 401). */
export class TokenError extends CryptoError {
  constructor(
    readonly kind: TokenErrorKind,
    message: string,
  ) {
    super('BAD_TOKEN', message, { reason: kind });
  }
}

export interface TokenRequest {
  sub: string;
  tenant: string;
  scopes: Scope[];
  ttlSeconds: number;
  /** RFC 9449 JWK thumbprint: the token is bound to that DPoP key (`cnf.jkt`). */
  jkt?: string;
}

export interface VerifiedToken {
  sub: string;
  tenant: string;
  /** Known scopes only; unknown ones from newer issuers are dropped (least privilege). */
  scopes: Scope[];
  kid: string;
  jti?: string;
  /** Set for DPoP-bound tokens: the thumbprint of the key every proof must be signed with. */
  jkt?: string;
  issuedAt: Date;
  expiresAt: Date;
}

/**
 * Mint an access token (DPoP-bound when `req.jkt` is given). With a KeyStore, signs with its active key (of `purpose` when
 * given); with a KeySigner, signs with that key.
 */
export async function mintToken(keystoreOrKey: KeyStore | KeySigner, req: TokenRequest, opts: { now?: Date; purpose?: string } = {}): Promise<string> {
  if (!req.sub) throw new CryptoError('INVALID_ARGUMENT', 'token sub must be non-empty');
  if (!req.tenant) throw new CryptoError('INVALID_ARGUMENT', 'token tenant must be non-empty');
  if (!Array.isArray(req.scopes) || req.scopes.length === 0) throw new CryptoError('INVALID_ARGUMENT', 'token needs at least one scope');
  const unknown = req.scopes.filter((s) => !isScope(s));
  if (unknown.length) throw new CryptoError('INVALID_ARGUMENT', `unknown scopes: ${unknown.join(', ')}`, { unknown });
  if (!Number.isInteger(req.ttlSeconds) || req.ttlSeconds <= 0 || req.ttlSeconds > MAX_TTL_SECONDS) {
    throw new CryptoError('INVALID_ARGUMENT', `ttlSeconds must be an integer in 1..${MAX_TTL_SECONDS}`);
  }
  const signer =
    keystoreOrKey instanceof KeyStore
      ? await keystoreOrKey.signer(opts.purpose !== undefined ? (await keystoreOrKey.active(opts.purpose)).kid : undefined)
      : keystoreOrKey;
  if (req.jkt !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(req.jkt))
    throw new CryptoError('INVALID_ARGUMENT', 'jkt must be a base64url SHA-256 JWK thumbprint');
  const iat = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  return new SignJWT({ tenant: req.tenant, scope: [...new Set(req.scopes)].join(' '), ...(req.jkt ? { cnf: { jkt: req.jkt } } : {}) })
    .setProtectedHeader({ alg: signer.alg, kid: signer.keyid, typ: TOKEN_TYP })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(req.sub)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + req.ttlSeconds)
    .setJti(randomUUID())
    .sign(signer.privateKey);
}

/** Extract the token from an `Authorization: Bearer <token>` header value. */
export function bearerToken(header: string | undefined | null): string {
  const a = authorizationToken(header);
  if (a.scheme !== 'Bearer') throw new TokenError('malformed', 'Authorization header is not a Bearer token');
  return a.token;
}

/** The scheme (Bearer or DPoP, RFC 9449 §7.1) and token of an Authorization header value. */
export function authorizationToken(header: string | undefined | null): { scheme: 'Bearer' | 'DPoP'; token: string } {
  if (header === undefined || header === null || header.trim() === '') throw new TokenError('missing', 'no access token');
  const m = /^(Bearer|DPoP)[ \t]+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
  if (!m) throw new TokenError('malformed', 'Authorization header is not a Bearer or DPoP token');
  return { scheme: m[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer', token: m[2]! };
}

/**
 * Key sets by content: jose's local JWK set imports each key once and keeps the CryptoKey, so
 * reusing the set for the same keys avoids re-importing the key on every request (it was a
 * quarter of the API's CPU). A rotation or revocation changes the content, hence the set.
 */
const keySets = new Map<string, ReturnType<typeof createLocalJWKSet>>();
const KEY_SETS_MAX = 32;
function localKeySet(publicJwks: { keys: JWK[] }): ReturnType<typeof createLocalJWKSet> {
  const id = publicJwks.keys.map((k) => JSON.stringify(k)).join('\n');
  let set = keySets.get(id);
  if (!set) {
    if (keySets.size >= KEY_SETS_MAX) keySets.clear();
    set = createLocalJWKSet(publicJwks);
    keySets.set(id, set);
  }
  return set;
}

/**
 * Verify a bearer token against a JWKS (KeyStore.publicJwks() or rootPackJwks()).
 * Only ES256/EdDSA are accepted, which rules out alg=none and HMAC key confusion.
 */
export async function verifyToken(
  token: string | undefined | null,
  publicJwks: { keys: JWK[] },
  opts: { now?: Date; clockToleranceSeconds?: number } = {},
): Promise<VerifiedToken> {
  if (token === undefined || token === null || token === '') throw new TokenError('missing', 'no bearer token');
  if (typeof token !== 'string' || token.split('.').length !== 3) throw new TokenError('malformed', 'token is not a compact JWS');
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    throw new TokenError('malformed', 'token header is not valid');
  }
  if (!kid) throw new TokenError('malformed', 'token header has no kid');

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, localKeySet(publicJwks), {
      algorithms: ['ES256', 'EdDSA'],
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
      typ: TOKEN_TYP,
      requiredClaims: ['sub', 'exp', 'iat'],
      currentDate: opts.now,
      clockTolerance: opts.clockToleranceSeconds ?? 0,
    }));
  } catch (err) {
    throw mapJoseError(err);
  }

  const { sub, tenant, scope, jti, cnf } = payload as JWTPayload & { tenant?: unknown; scope?: unknown; cnf?: { jkt?: unknown } };
  if (typeof sub !== 'string' || sub === '') throw new TokenError('invalid_claims', 'token sub missing');
  if (typeof tenant !== 'string' || tenant === '') throw new TokenError('invalid_claims', 'token tenant missing');
  if (typeof scope !== 'string') throw new TokenError('invalid_claims', 'token scope missing');
  if (cnf !== undefined && (typeof cnf !== 'object' || cnf === null || typeof cnf.jkt !== 'string'))
    throw new TokenError('invalid_claims', 'token cnf has no jkt');
  const scopes = [...new Set(scope.split(' ').filter(isScope))];
  return {
    sub,
    tenant,
    scopes,
    kid,
    ...(typeof jti === 'string' ? { jti } : {}),
    ...(cnf ? { jkt: cnf.jkt as string } : {}),
    issuedAt: new Date((payload.iat as number) * 1000),
    expiresAt: new Date((payload.exp as number) * 1000),
  };
}

/** jose's verification errors as TokenError kinds (shared with src/crypto/action-tokens.ts). */
export function mapJoseError(err: unknown): TokenError {
  if (err instanceof joseErrors.JWTExpired) return new TokenError('expired', 'token expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return new TokenError('not_yet_valid', `token ${err.claim} is in the future`);
    return new TokenError('invalid_claims', `token claim ${err.claim} rejected: ${err.reason}`);
  }
  if (
    err instanceof joseErrors.JWSSignatureVerificationFailed ||
    err instanceof joseErrors.JWKSNoMatchingKey ||
    err instanceof joseErrors.JWKSMultipleMatchingKeys ||
    err instanceof joseErrors.JOSEAlgNotAllowed
  ) {
    return new TokenError('invalid_signature', err.message);
  }
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JOSENotSupported) {
    return new TokenError('malformed', err.message);
  }
  return new TokenError('malformed', `token rejected: ${(err as Error)?.message ?? String(err)}`);
}

/** Request authentication: stella access tokens (Bearer or DPoP-bound, RFC 9449), external tokens, revocation. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { decodeJwt } from 'jose';
import { StellaError } from '../lib/errors';
import { authorizationToken, verifyToken, TokenError, TOKEN_ISSUER, type VerifiedToken } from '../crypto/tokens';
import { DpopError, DpopNonces, ReplayCache, verifyDpopProof, DPOP_ALGS, type VerifiedProof } from '../crypto/dpop';
import { revokedSet, type RevokedSet } from '../core/identity/revocation';
import type { ApiDeps, Principal } from './deps';

export interface DpopSettings {
  /** The API's public base URL (behind a proxy): proofs' htu is compared against it. */
  publicUrl?: string;
  /** Proofs whose iat is further than this from now are refused; jtis are remembered this long. */
  iatWindowSeconds: number;
  /** Require a server-issued nonce in every proof (RFC 9449 §8). */
  nonce: boolean;
}

/** Per-API DPoP state: the jti replay cache (in-process, bounded) and the nonce issuer. */
export interface DpopGuard {
  settings: DpopSettings;
  replay: ReplayCache;
  nonces: DpopNonces | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    dpop: DpopGuard;
  }
}

export function createDpopGuard(settings: DpopSettings): DpopGuard {
  return {
    settings,
    replay: new ReplayCache(settings.iatWindowSeconds * 2),
    nonces: settings.nonce ? new DpopNonces(Math.max(60, settings.iatWindowSeconds)) : null,
  };
}

/** The value of WWW-Authenticate for a 401 (RFC 6750 §3 / RFC 9449 §7.1). */
export function challenge(details: { reason?: string; dpopError?: string } | undefined, message: string): string {
  const algs = `algs="${DPOP_ALGS.join(' ')}"`;
  const desc = message.replace(/["\\]/g, "'");
  if (details?.dpopError) return `DPoP error="${details.dpopError}", error_description="${desc}", ${algs}`;
  if (details?.reason === 'missing') return `Bearer, DPoP ${algs}`;
  return `Bearer error="invalid_token", error_description="${desc}", DPoP ${algs}`;
}

function unauthenticated(message: string, reason: string, dpopError?: string): StellaError {
  return new StellaError('FORBIDDEN', message, { unauthenticated: true, reason, ...(dpopError ? { dpopError } : {}) });
}

/** The URL the client addressed: the configured public base URL (path prefix kept) or the request's own scheme and host. */
function requestUrl(req: FastifyRequest, guard: DpopGuard): string {
  const path = req.url.split('?')[0]!;
  const base = guard.settings.publicUrl ?? `${req.protocol}://${req.host}`;
  return `${base.replace(/\/$/, '')}${path}`;
}

/** One DPoP proof of this request, checked (§4.3), its jti recorded; DpopError otherwise. */
async function checkProof(req: FastifyRequest, accessToken: string | undefined): Promise<VerifiedProof> {
  const guard = req.server.dpop;
  const header = req.headers.dpop;
  if (header === undefined || header === '') throw new DpopError('invalid_dpop_proof', 'no DPoP proof (DPoP header)');
  if (Array.isArray(header) || header.includes(',')) throw new DpopError('invalid_dpop_proof', 'more than one DPoP proof');
  const nonces = guard.nonces;
  const proof = await verifyDpopProof(header, {
    method: req.method,
    url: requestUrl(req, guard),
    accessToken,
    iatWindowSeconds: guard.settings.iatWindowSeconds,
    ...(nonces ? { nonce: (n: string) => nonces.valid(n) } : {}),
  });
  if (!guard.replay.add(`${proof.jkt}:${proof.jti}`)) throw new DpopError('invalid_dpop_proof', 'DPoP proof jti was already used (replay)');
  return proof;
}

/**
 * For token endpoints (no access token yet): the JWK thumbprint of the request's DPoP proof, to
 * bind the issued token to (`cnf.jkt`); undefined without a DPoP header; 400 on a bad proof.
 */
export async function dpopKeyThumbprint(req: FastifyRequest): Promise<string | undefined> {
  if (req.headers.dpop === undefined) return undefined;
  try {
    return (await checkProof(req, undefined)).jkt;
  } catch (e) {
    if (e instanceof DpopError) throw new StellaError('BAD_INPUT', e.message, { reason: e.kind });
    throw e;
  }
}

/** The token's issuer without verifying it: routes a token to stella's verifier or the external one. */
function issuerOf(token: string): string | undefined {
  try {
    return decodeJwt(token).iss;
  } catch {
    return undefined;
  }
}

async function verifyPrincipal(token: string, deps: ApiDeps): Promise<Principal> {
  if (deps.externalTokens && issuerOf(token) !== TOKEN_ISSUER) {
    const p = await deps.externalTokens(token);
    if (!p) throw new TokenError('invalid_signature', 'token is not a stella token and the external verifier did not accept it');
    return p;
  }
  const revoked = await revokedSet(deps.ctx.db);
  const jwks = await deps.tokenKeys();
  const claims = await verifiedClaims(token, jwks, revoked);
  if (claims.jti && revoked.jtis.has(claims.jti)) throw new TokenError('invalid_claims', `token ${claims.jti} is revoked`);
  return {
    sub: claims.sub,
    tenant: claims.tenant,
    scopes: claims.scopes,
    kid: claims.kid,
    ...(claims.jti ? { jti: claims.jti } : {}),
    ...(claims.jkt ? { jkt: claims.jkt } : {}),
  };
}

/**
 * Tokens whose signature and claims verified, by the token itself: a client sends the same token
 * with every request, and the signature check (ECDSA) was the largest CPU cost of a GET. A hit
 * still needs its signing key among the live keys (not removed, not revoked: a key revocation
 * bites at once) and an unexpired token; a revoked jti is checked by the caller on every request.
 * Per key source (one API process), bounded.
 */
const verifiedTokens = new WeakMap<object, Map<string, VerifiedToken>>();
const MAX_CACHED_TOKENS = 10_000;

async function verifiedClaims(token: string, jwks: { keys: Record<string, unknown>[] }, revoked: RevokedSet): Promise<VerifiedToken> {
  let cache = verifiedTokens.get(jwks);
  if (!cache) verifiedTokens.set(jwks, (cache = new Map()));
  const hit = cache.get(token);
  if (hit && !revoked.kids.has(hit.kid) && hit.expiresAt.getTime() > Date.now()) return hit;
  if (hit) cache.delete(token);
  const live = { keys: jwks.keys.filter((k) => !revoked.kids.has(String(k.kid))) };
  const claims = await verifyToken(token, live as never);
  if (cache.size >= MAX_CACHED_TOKENS) cache.clear();
  cache.set(token, claims);
  return claims;
}

/**
 * Access token → principal (401 otherwise). `Authorization: DPoP` needs a DPoP-bound token and a
 * valid proof by its key; a DPoP-bound token sent as Bearer is refused; revoked tokens and keys are refused.
 */
export async function authenticate(req: FastifyRequest, deps: ApiDeps): Promise<Principal> {
  let presented: ReturnType<typeof authorizationToken>;
  let principal: Principal;
  try {
    presented = authorizationToken(req.headers.authorization);
    principal = await verifyPrincipal(presented.token, deps);
  } catch (e) {
    if (!(e instanceof TokenError)) throw e;
    const hint = e.kind === 'missing' ? ' (set STELLA_TOKEN or run `stella auth token`)' : '';
    throw unauthenticated(`${e.message}${hint}`, e.kind);
  }
  if (presented.scheme === 'Bearer') {
    if (principal.jkt) throw unauthenticated('this token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof', 'dpop_bound', 'invalid_token');
    return { ...principal, dpop: false };
  }
  if (!principal.jkt) throw unauthenticated('Authorization: DPoP needs a DPoP-bound token (cnf.jkt)', 'not_dpop_bound', 'invalid_token');
  let proof: VerifiedProof;
  try {
    proof = await checkProof(req, presented.token);
  } catch (e) {
    if (e instanceof DpopError) throw unauthenticated(e.message, e.kind, e.kind);
    throw e;
  }
  if (proof.jkt !== principal.jkt)
    throw unauthenticated('DPoP proof is signed by another key than the token is bound to (cnf.jkt)', 'jkt_mismatch', 'invalid_dpop_proof');
  return { ...principal, dpop: true };
}

/** Registers the DPoP guard and its response headers (DPoP-Nonce, WWW-Authenticate) on the app. */
export function registerDpop(app: FastifyInstance, settings: DpopSettings): void {
  const guard = createDpopGuard(settings);
  app.decorate('dpop', guard);
  // Only when nonces are required: otherwise the hook would cost every response a step for nothing.
  const nonces = guard.nonces;
  if (!nonces) return;
  app.addHook('onSend', (req, reply, payload, done) => {
    if (req.headers.dpop !== undefined || reply.statusCode === 401) reply.header('dpop-nonce', nonces.issue());
    done(null, payload);
  });
}

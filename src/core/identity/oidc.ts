/**
 * OIDC resource server: verifies JWTs from the issuers the identity file trusts. Keys come from
 * the issuer's discovery document and JWKS (jose's createRemoteJWKSet: cached, refetched when a
 * token names an unknown kid, so key rotation needs no restart). Access tokens map to a stella
 * principal through the issuer's claim rules.
 */
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, type JWTPayload, jwtVerify } from 'jose';
import type { Scope } from '../../crypto/tokens';
import type { TrustedIssuerRule } from './config';

/** Asymmetric algorithms only: no `none`, no HMAC (whose key would be the public JWK). */
export const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];
const DISCOVERY_MAX_AGE_MS = 3_600_000;
const FETCH_TIMEOUT_MS = 5000;

export type IdentityErrorKind = 'unknown_issuer' | 'expired' | 'invalid_signature' | 'invalid_claims' | 'no_match' | 'invalid_scope' | 'unavailable';

/** A token stella does not accept, with a reason that names no configuration secret. */
export class IdentityError extends Error {
  constructor(
    readonly kind: IdentityErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Who a verified external token speaks for (the API's Principal shape). */
export interface ExternalPrincipal {
  sub: string;
  tenant: string;
  scopes: Scope[];
  /** RFC 9449 `cnf.jkt` when the IdP bound its token to a DPoP key. */
  jkt?: string;
}

type KeySet = ReturnType<typeof createRemoteJWKSet>;

/** Discovery + JWKS per issuer, cached; a failed discovery is not cached (the next request retries). */
export class IssuerKeys {
  private readonly cache = new Map<string, { at: number; keys: Promise<KeySet> }>();

  constructor(private readonly fetchImpl: typeof fetch = fetch) {}

  keysOf(issuer: string): Promise<KeySet> {
    const hit = this.cache.get(issuer);
    if (hit && Date.now() - hit.at < DISCOVERY_MAX_AGE_MS) return hit.keys;
    const keys = this.discover(issuer);
    this.cache.set(issuer, { at: Date.now(), keys });
    keys.catch(() => this.cache.delete(issuer));
    return keys;
  }

  private async discover(issuer: string): Promise<KeySet> {
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await this.fetchImpl(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      doc = (await res.json()) as typeof doc;
    } catch (e) {
      throw new IdentityError('unavailable', `OIDC discovery for ${issuer} failed (${(e as Error).message})`);
    }
    // OIDC Discovery §4.3: the document must name exactly the issuer it was fetched for.
    if (doc.issuer !== issuer) throw new IdentityError('unavailable', `OIDC discovery for ${issuer} names another issuer`);
    if (typeof doc.jwks_uri !== 'string') throw new IdentityError('unavailable', `OIDC discovery for ${issuer} has no jwks_uri`);
    return createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: FETCH_TIMEOUT_MS, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
  }
}

/** The `iss` of a JWT, unverified: only to pick which issuer's keys and rules apply. */
export function issuerOf(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** Verifies signature (issuer's JWKS), iss, exp/nbf and optionally aud/typ. */
export async function verifyIssuerJwt(
  keys: IssuerKeys,
  token: string,
  issuer: string,
  opts: { audience?: string; typ?: string } = {},
): Promise<JWTPayload & Record<string, unknown>> {
  const jwks = await keys.keysOf(issuer);
  try {
    const { payload } = await jwtVerify(token, jwks, {
      issuer,
      algorithms: ALGORITHMS,
      requiredClaims: ['exp'],
      clockTolerance: 30,
      ...(opts.audience ? { audience: opts.audience } : {}),
      ...(opts.typ ? { typ: opts.typ } : {}),
    });
    return payload as JWTPayload & Record<string, unknown>;
  } catch (e) {
    throw asIdentityError(e);
  }
}

function asIdentityError(e: unknown): IdentityError {
  if (e instanceof IdentityError) return e;
  if (e instanceof joseErrors.JWTExpired) return new IdentityError('expired', 'token expired');
  if (e instanceof joseErrors.JWTClaimValidationFailed) return new IdentityError('invalid_claims', `token claim ${e.claim} rejected`);
  if (e instanceof joseErrors.JWKSTimeout) return new IdentityError('unavailable', 'the issuer’s JWKS did not answer in time');
  // A JWKS that cannot be fetched or read (jose's generic error, or fetch's own) is an outage, not a bad token.
  if (!(e instanceof joseErrors.JOSEError) || e.code === 'ERR_JOSE_GENERIC' || e instanceof joseErrors.JWKSInvalid) {
    return new IdentityError('unavailable', `the issuer’s JWKS could not be read (${(e as Error).message})`);
  }
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return new IdentityError('invalid_claims', 'token is not a valid JWT');
  return new IdentityError('invalid_signature', 'token signature is not valid for its issuer');
}

/** A claim's values: a string (space-separated for `scope`), or an array of strings. */
export function claimValues(v: unknown): string[] {
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

/** Pure: a verified access token's claims → the principal its issuer's rules give it. */
export function mapAccessToken(rule: TrustedIssuerRule, claims: Record<string, unknown>): ExternalPrincipal {
  const sub = claims[rule.subjectClaim];
  if (typeof sub !== 'string' || sub === '') throw new IdentityError('invalid_claims', `token has no ${rule.subjectClaim} claim`);
  let tenant = rule.tenant;
  if (rule.tenantClaim) {
    const t = claims[rule.tenantClaim];
    if (typeof t !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(t))
      throw new IdentityError('invalid_claims', `token has no usable ${rule.tenantClaim} claim`);
    if (rule.tenants && !rule.tenants.includes(t)) throw new IdentityError('no_match', `tenant ${t} is not one this issuer may name`);
    tenant = t;
  }
  const scopes = [...new Set(claimValues(claims[rule.scopes.claim]).flatMap((v) => rule.scopes.map[v] ?? []))];
  if (scopes.length === 0) throw new IdentityError('no_match', `token’s ${rule.scopes.claim} grants no stella scope`);
  const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt;
  return { sub, tenant: tenant!, scopes, ...(typeof jkt === 'string' ? { jkt } : {}) };
}

/** An IdP access token → its principal and the issuer rule that mapped it; null when no trusted issuer made it. */
export async function resolveAccessToken(
  keys: IssuerKeys,
  issuers: readonly TrustedIssuerRule[],
  token: string,
): Promise<{ principal: ExternalPrincipal; rule: TrustedIssuerRule } | null> {
  const iss = issuerOf(token);
  const rule = iss === undefined ? undefined : issuers.find((i) => i.issuer === iss);
  if (!rule) return null;
  const claims = await verifyIssuerJwt(keys, token, rule.issuer, { audience: rule.audience, typ: rule.requireAtJwt ? 'at+jwt' : undefined });
  return { principal: mapAccessToken(rule, claims), rule };
}

/** The API's external-token hook: an IdP access token → principal, or null (not from a trusted issuer). */
export async function verifyAccessToken(keys: IssuerKeys, issuers: readonly TrustedIssuerRule[], token: string): Promise<ExternalPrincipal | null> {
  return (await resolveAccessToken(keys, issuers, token))?.principal ?? null;
}

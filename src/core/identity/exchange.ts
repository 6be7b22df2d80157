/**
 * Token exchange (RFC 8693) behind `POST /auth/token`: a verified outside identity — a CI job's
 * identity token (trusted publishing) or an IdP access token (`stella auth login`) — becomes a
 * short-lived stella token for the tenant and scopes the identity file grants, DPoP-bound when
 * the request proved a key.
 */
import type { AppContext } from '../context';
import type { Scope } from '../../crypto/tokens';
import { type IdentityConfig, loadIdentityConfig, ttlSeconds } from './config';
import { issueStellaToken, type IssuedToken } from './issue';
import { type ExternalPrincipal, IdentityError, IssuerKeys, resolveAccessToken, verifyAccessToken } from './oidc';
import { verifyPublisherToken } from './trusted-publishing';

export interface ExchangeRequest {
  /** `identity`: a CI identity token (trusted publishing); `access`: an IdP access token. */
  kind: 'identity' | 'access';
  subjectToken: string;
  /** Optional narrowing (RFC 8693 `scope`): space-separated stella scopes. */
  scope?: string;
  /** Thumbprint of the key whose DPoP proof came with the request. */
  jkt?: string;
}

export interface Exchanged extends IssuedToken {
  tenant: string;
  scopes: Scope[];
  ttlSeconds: number;
}

export interface Identity {
  config: IdentityConfig;
  /** The API's external-token hook: an IdP access token → principal; null when no trusted issuer made it. */
  verifyAccessToken: (token: string) => Promise<ExternalPrincipal | null>;
  exchange: (req: ExchangeRequest) => Promise<Exchanged>;
}

/** The configured identity (STELLA_IDENTITY_FILE, validated now), or undefined when stella trusts no IdP. */
export function loadIdentity(ctx: AppContext, opts: { fetch?: typeof fetch } = {}): Identity | undefined {
  if (!ctx.cfg.identity.file) return undefined;
  return createIdentity(ctx, loadIdentityConfig(ctx.cfg.identity.file), opts);
}

export function createIdentity(ctx: AppContext, config: IdentityConfig, opts: { fetch?: typeof fetch } = {}): Identity {
  const keys = new IssuerKeys(opts.fetch);
  return {
    config,
    verifyAccessToken: (token) => verifyAccessToken(keys, config.issuers, token),
    exchange: async (req) => {
      if (req.kind === 'identity') {
        const { rule, claims } = await verifyPublisherToken(keys, config.trustedPublishers, req.subjectToken);
        const ciSub = typeof claims.sub === 'string' ? claims.sub : rule.name;
        return issue(ctx, {
          sub: `ci:${ciSub}`,
          tenant: rule.tenant,
          granted: rule.scopes,
          ttlSeconds: ttlSeconds(rule.tokenTtl),
          via: 'trusted-publishing',
          actor: `trusted-publisher ${rule.name} (${claims.iss} ${ciSub})`,
          req,
        });
      }
      const found = await resolveAccessToken(keys, config.issuers, req.subjectToken);
      if (!found) throw new IdentityError('unknown_issuer', 'the access token is not from an issuer stella trusts');
      const p = found.principal;
      // A DPoP-bound IdP token may only be exchanged by the holder of its key.
      if (p.jkt && p.jkt !== req.jkt) throw new IdentityError('invalid_claims', 'the access token is DPoP-bound to another key');
      return issue(ctx, {
        sub: p.sub,
        tenant: p.tenant,
        granted: p.scopes,
        ttlSeconds: ttlSeconds(found.rule.tokenTtl),
        via: 'oidc-login',
        actor: `${p.sub} (${found.rule.issuer})`,
        req,
      });
    },
  };
}

async function issue(
  ctx: AppContext,
  a: {
    sub: string;
    tenant: string;
    granted: readonly Scope[];
    ttlSeconds: number;
    via: 'trusted-publishing' | 'oidc-login';
    actor: string;
    req: ExchangeRequest;
  },
): Promise<Exchanged> {
  const scopes = narrow(a.granted, a.req.scope);
  const issued = await issueStellaToken(ctx, {
    sub: a.sub,
    tenant: a.tenant,
    scopes,
    ttlSeconds: a.ttlSeconds,
    via: a.via,
    actor: a.actor,
    ...(a.req.jkt ? { jkt: a.req.jkt } : {}),
  });
  return { ...issued, tenant: a.tenant, scopes, ttlSeconds: a.ttlSeconds };
}

/** RFC 8693 `scope`: a subset of what the identity is granted; asking for more is invalid_scope. */
export function narrow(granted: readonly Scope[], asked: string | undefined): Scope[] {
  if (asked === undefined || asked.trim() === '') return [...granted];
  const want = [...new Set(asked.split(/\s+/).filter(Boolean))];
  const extra = want.filter((s) => !granted.includes(s as Scope));
  if (extra.length) throw new IdentityError('invalid_scope', `not granted to this identity: ${extra.join(' ')}`);
  return want as Scope[];
}

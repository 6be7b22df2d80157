import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Client } from '@temporalio/client';
import type { AppContext } from '../core/context';
import type { FastifyInstance } from 'fastify';
import type { HttpMetrics } from '../core/metrics';
import type { DoctorCheck } from '../core/doctor';
import { StellaError } from '../lib/errors';
import type { Viewer } from '../core/evidence/viewer';

export interface ApiDeps {
  ctx: AppContext;
  temporal: { client: Client; taskQueue: string } | null;
  metrics: HttpMetrics;
  /** Every feature's doctor checks (src/app/features.ts). */
  doctorChecks: readonly DoctorCheck[];
  /** Public JWKs that API tokens are verified against. */
  tokenKeys: () => Promise<{ keys: Record<string, unknown>[] }>;
  /**
   * Verifies an access token that is not a stella token (e.g. an OIDC access token); null when it
   * does not authenticate anyone. A principal with `jkt` is DPoP-bound like a stella token.
   */
  externalTokens?: (token: string) => Promise<Principal | null>;
}

export interface Principal {
  sub: string;
  tenant: string;
  scopes: string[];
  /** The token's id and signing key, for revocation, rate limits and audit. */
  jti?: string;
  kid?: string;
  /** RFC 9449 thumbprint of the key the token is bound to (DPoP-bound tokens only). */
  jkt?: string;
  /** True when the request proved possession of the token's DPoP key. */
  dpop?: boolean;
}

/** Scopes whose routes refuse bearer tokens: only a DPoP-bound token with a valid proof will do (runbook: replay:read with DPoP). */
export const DPOP_SCOPES: ReadonlySet<string> = new Set(['replay:read']);

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Enforces a scope (or `admin`) on the verified token; 403 otherwise (401 for a DPoP scope without DPoP). */
export function requireScope(req: FastifyRequest, scope: string): Principal {
  const p = req.principal;
  if (!p) throw new StellaError('FORBIDDEN', 'no principal');
  if (!p.scopes.includes(scope) && !p.scopes.includes('admin')) throw new StellaError('FORBIDDEN', `token lacks scope ${scope}`);
  if (DPOP_SCOPES.has(scope) && !p.dpop) {
    throw new StellaError('FORBIDDEN', `${scope} needs a DPoP-bound token and a DPoP proof (stella auth token --dpop)`, {
      unauthenticated: true,
      reason: 'dpop_required',
      dpopError: 'invalid_token',
    });
  }
  return p;
}

/** The tenant a request acts for: the token's, unless an admin names another. */
export function tenantOf(req: FastifyRequest): string {
  const p = req.principal!;
  const asked = (req.headers['x-stella-tenant'] as string | undefined) ?? (req.query as Record<string, string> | undefined)?.tenant;
  if (asked && asked !== p.tenant) {
    if (!p.scopes.includes('admin')) throw new StellaError('FORBIDDEN', `token is for tenant ${p.tenant}, not ${asked}`);
    return asked;
  }
  return p.tenant;
}

/** The request's tenant and whether it may see whole-locker ('*') records: core resolves ids with it. */
export function viewerOf(req: FastifyRequest): Viewer {
  return { tenant: tenantOf(req), admin: req.principal!.scopes.includes('admin') };
}

export function temporalOrThrow(deps: ApiDeps) {
  if (!deps.temporal) throw new StellaError('UNAVAILABLE', 'Temporal is not connected');
  return deps.temporal;
}

export type Reply = FastifyReply;

/** A feature's HTTP routes: registered on the app by buildApi. */
export type RegisterRoutes = (app: FastifyInstance, deps: ApiDeps) => Promise<void>;

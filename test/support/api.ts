import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/server';
import { doctorChecksOf, routesOf } from '../../src/app/features';
import { createMetrics } from '../../src/app/metrics';
import { tokenJwks, TOKEN_PURPOSE } from '../../src/core/keys';
import { mintToken, type Scope } from '../../src/crypto/tokens';
import type { Harness } from './context';
import { exportJWK, generateKeyPair } from 'jose';
import { createDpopProof, jwkThumbprint, type DpopSigner } from '../../src/crypto/dpop';

/** The HTTP API over a test harness, wired the way `stella serve` wires it (for app.inject or listen). */
export async function apiFor(h: Harness): Promise<FastifyInstance> {
  const deps = {
    ctx: h.ctx,
    temporal: { client: h.client, taskQueue: h.ctx.cfg.temporal.taskQueue },
    metrics: createMetrics(h.ctx.db, { blobs: h.ctx.blobs }),
    doctorChecks: doctorChecksOf(),
    tokenKeys: () => tokenJwks(h.ctx.keys),
  };
  return buildApi(deps, await routesOf());
}

/** An Authorization header for a token with these scopes (tenant `default` unless given). */
export async function bearer(h: Harness, scopes: (Scope | string)[], tenant = 'default'): Promise<{ authorization: string }> {
  const token = await mintToken(
    h.ctx.keys,
    { sub: `test-${scopes.join('+')}`, tenant, scopes: scopes as Scope[], ttlSeconds: 600 },
    { purpose: TOKEN_PURPOSE },
  );
  return { authorization: `Bearer ${token}` };
}

/**
 * A DPoP-bound token (RFC 9449) with these scopes and its key: `headers(method, path)` makes the
 * Authorization and a fresh DPoP proof for one app.inject request (htu http://localhost<path>).
 */
export async function dpopAuth(h: Harness, scopes: (Scope | string)[], tenant = 'default') {
  const key = await newDpopKey();
  const jkt = await jwkThumbprint(key.publicJwk);
  const token = await mintToken(
    h.ctx.keys,
    { sub: `test-dpop-${scopes.join('+')}`, tenant, scopes: scopes as Scope[], ttlSeconds: 600, jkt },
    { purpose: TOKEN_PURPOSE },
  );
  const headers = async (method: string, path: string, opts: { nonce?: string } = {}) => ({
    authorization: `DPoP ${token}`,
    dpop: await createDpopProof(key, { method, url: `http://localhost${path}`, accessToken: token, ...opts }),
  });
  return { token, key, jkt, headers };
}

/** A fresh ES256 DPoP key pair. */
export async function newDpopKey(): Promise<DpopSigner> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, publicJwk: await exportJWK(publicKey), alg: 'ES256' };
}

export type DpopAuth = Awaited<ReturnType<typeof dpopAuth>>;

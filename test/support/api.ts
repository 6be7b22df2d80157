import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../src/api/server';
import { doctorChecksOf, routesOf } from '../../src/app/features';
import { createMetrics } from '../../src/app/metrics';
import { tokenJwks, TOKEN_PURPOSE } from '../../src/core/keys';
import { mintToken, type Scope } from '../../src/crypto/tokens';
import type { Harness } from './context';

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

/** Liveness, readiness and Prometheus metrics. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Liveness, Readiness } from '../../contracts/health';
import { readiness } from '../../core/evidence/locker/health';
import type { ApiDeps } from '../deps';

export async function registerHealthRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get('/healthz', { schema: { response: { 200: Liveness } } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', { schema: { response: { 200: Readiness, 503: Readiness } } }, async (_req, reply) => {
    const r = await readiness(deps.ctx, deps.temporal);
    return reply.status(r.failed.length ? 503 : 200).send(r);
  });

  // Prometheus text: no response schema.
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}

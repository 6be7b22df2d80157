import Fastify, { type FastifyInstance } from 'fastify';
import { StellaError } from '../core/errors';
import type { ApiDeps } from './deps';
import { authenticate } from './auth';
import { registerHealthRoutes } from './routes/health';
import { registerEvidenceRoutes } from './routes/evidence';

const STATUS: Record<StellaError['code'], number> = {
  BAD_INPUT: 400,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  TOO_LARGE: 413,
  INTEGRITY: 422,
  UNAVAILABLE: 503,
};

/** Routes that need no token: probes and metrics scraping. */
const PUBLIC = new Set(['/healthz', '/readyz', '/metrics']);

export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });

  // Evidence uploads are streamed: any content type reaches the handler as the raw stream.
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  app.addHook('onRequest', async (req) => {
    const path = req.url.split('?')[0]!;
    if (PUBLIC.has(path)) return;
    req.principal = await authenticate(req.headers.authorization, deps);
  });

  app.addHook('onResponse', async (req, reply) => {
    deps.metrics.httpRequests.inc({ route: req.routeOptions.url ?? 'unknown', method: req.method, status: String(reply.statusCode) });
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof StellaError) {
      const status = err.code === 'FORBIDDEN' && (err.details as { unauthenticated?: boolean } | undefined)?.unauthenticated ? 401 : STATUS[err.code];
      return reply.status(status).send({ error: { code: err.code, message: err.message, ...(err.details ?? {}) } });
    }
    const e = err as { statusCode?: number; message: string; code?: string };
    if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send({ error: { code: e.code ?? 'BAD_REQUEST', message: e.message } });
    deps.ctx.log.error({ err, url: req.url }, 'request failed');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: e.message } });
  });

  await registerHealthRoutes(app, deps);
  await registerEvidenceRoutes(app, deps);
  for (const extra of extraRoutes) await extra(app, deps);
  return app;
}

/** Feature modules add their routes here at import time (see src/api/routes/index.ts). */
export const extraRoutes: ((app: FastifyInstance, deps: ApiDeps) => Promise<void>)[] = [];

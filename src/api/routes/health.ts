import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps';

async function check(name: string, fn: () => Promise<unknown>, timeoutMs = 3000) {
  const started = Date.now();
  try {
    await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs))]);
    return { name, ok: true, latencyMs: Date.now() - started };
  } catch (e) {
    return { name, ok: false, error: (e as Error).message, latencyMs: Date.now() - started };
  }
}

export async function registerHealthRoutes(app: FastifyInstance, deps: ApiDeps) {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const checks = await Promise.all([
      check('postgres', () => deps.ctx.db.query('SELECT 1')),
      check('blobstore', () => deps.ctx.blobs.primary.health()),
      check('temporal', async () => {
        if (!deps.temporal) throw new Error('not connected');
        await deps.temporal.client.connection.workflowService.getSystemInfo({});
      }),
    ]);
    const failed = checks.filter((c) => !c.ok).map((c) => c.name);
    return reply.status(failed.length ? 503 : 200).send({ status: failed.length ? 'unready' : 'ready', failed, checks });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}

import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import { badInput, notFound } from '../../lib/errors';
import { verifyReport } from '../../core/verify';
import { resolveToAnchor } from '../../core/backup/anchors';

const startBody = z.object({
  mode: z.enum(['quick', 'full']).default('quick'),
  sampleRate: z.number().gt(0).max(1).optional(),
  allTenants: z.boolean().optional(),
  toAnchor: z.string().optional(),
  maxLogSize: z.number().int().nonnegative().optional(),
  batchSize: z.number().int().min(1).max(10_000).optional(),
});

export async function registerVerifyRoutes(app: FastifyInstance, deps: ApiDeps) {
  app.post('/evidence/verify', async (req, reply) => {
    const p = requireScope(req, 'evidence:read');
    const b = startBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(b.error.issues[0]!.message);
    const t = temporalOrThrow(deps);
    const runId = `verify-${b.data.mode}-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;
    const allTenants = b.data.allTenants && p.scopes.includes('admin');
    // Point-in-time: verify exactly the log prefix the anchor signed (root checked first).
    const pit = b.data.toAnchor ? await resolveToAnchor(deps.ctx.db, b.data.toAnchor) : null;
    await t.client.workflow.start('verifyEvidence', {
      taskQueue: t.taskQueue,
      workflowId: runId,
      args: [
        {
          runId,
          tenant: allTenants ? null : tenantOf(req),
          mode: b.data.mode,
          sampleRate: b.data.sampleRate ?? deps.ctx.cfg.schedules.verifySampleRate,
          batchSize: b.data.batchSize,
          toAnchor: pit?.anchorId ?? null,
          maxLogSize: pit?.logSize ?? b.data.maxLogSize ?? null,
        },
      ],
    });
    return reply.status(202).send({ runId, workflowId: runId });
  });

  app.get('/evidence/verify/:runId', async (req) => {
    requireScope(req, 'evidence:read');
    const { runId } = req.params as { runId: string };
    const t = temporalOrThrow(deps);
    const h = t.client.workflow.getHandle(runId);
    try {
      const d = await h.describe();
      const running = d.status.name === 'RUNNING';
      const progress = running ? await h.query('progress').catch(() => null) : null;
      const result = d.status.name === 'COMPLETED' ? await h.result() : null;
      return { runId, status: d.status.name, progress, result };
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw notFound(`verify run ${runId} not found`);
      throw e;
    }
  });

  app.get('/evidence/verify-report', async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query as { runId?: string; filter?: string };
    if (q.filter && q.filter !== 'failed' && q.filter !== 'all') throw badInput('filter must be failed or all');
    const r = await verifyReport(deps.ctx, { runId: q.runId, failedOnly: q.filter === 'failed' });
    if (!r) throw notFound('no verification run yet (stella evidence verify --mode quick)');
    return r;
  });
}

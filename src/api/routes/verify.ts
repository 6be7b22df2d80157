/** Integrity verification routes: start a run (workflows/evidence.ts verifyEvidence), follow it, read its report. */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { verifyEvidence, verifyProgressQuery } from '../../../workflows/evidence';
import { RunIdParams, VerifyReport, VerifyReportQuery, VerifyRunStatus, VerifyStartBody, VerifyStarted } from '../../contracts/locker';
import { resolveToAnchor } from '../../core/backup/anchors';
import { createVerifyRun, verifyReport, verifyRunOf } from '../../core/evidence/locker/verify';
import { badInput, notFound } from '../../lib/errors';
import { failureOf } from '../../temporal/failure';
import { verifyRunWorkflowId } from '../../temporal/names';
import { liveProgress } from '../../temporal/progress';
import { type ApiDeps, requireScope, temporalOrThrow, tenantOf, viewerOf } from '../deps';

export async function registerVerifyRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.post('/evidence/verify', { schema: { body: VerifyStartBody, response: { 202: VerifyStarted } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:read');
    const b = req.body;
    const t = temporalOrThrow(deps);
    const runId = verifyRunWorkflowId(b.mode, new Date(), randomUUID().slice(0, 8));
    const allTenants = b.allTenants && p.scopes.includes('admin');
    // Point-in-time: verify exactly the log prefix the anchor signed (root checked first).
    const pit = b.toAnchor ? await resolveToAnchor(deps.ctx.db, b.toAnchor) : null;
    const input = {
      runId,
      tenant: allTenants ? null : tenantOf(req),
      mode: b.mode,
      sampleRate: b.sampleRate ?? deps.ctx.cfg.schedules.verifySampleRate,
      batchSize: b.batchSize,
      toAnchor: pit?.anchorId ?? null,
      maxLogSize: pit?.logSize ?? b.maxLogSize ?? null,
    };
    // The run row (with its tenant) exists before the workflow, so its id resolves within the tenant at once.
    await createVerifyRun(deps.ctx, input);
    await t.client.workflow.start(verifyEvidence, { taskQueue: t.taskQueue, workflowId: runId, args: [input] });
    return reply.status(202).send({ runId, workflowId: runId });
  });

  app.get('/evidence/verify/:runId', { schema: { params: RunIdParams, response: { 200: VerifyRunStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const { runId } = req.params;
    await verifyRunOf(deps.ctx, viewerOf(req), runId);
    const h = temporalOrThrow(deps).client.workflow.getHandle<typeof verifyEvidence>(runId);
    try {
      const d = await h.describe();
      const running = d.status.name === 'RUNNING';
      const progress = running ? await liveProgress(h, verifyProgressQuery) : null;
      const result = d.status.name === 'COMPLETED' ? await h.result() : null;
      const failure = running || result ? null : await failureOf(h.result());
      return { runId, status: d.status.name, progress, result, error: failure?.message ?? null, errorCode: failure?.code ?? null };
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw notFound(`verify run ${runId} not found`, undefined, { cause: e });
      throw e;
    }
  });

  app.get('/evidence/verify-report', { schema: { querystring: VerifyReportQuery, response: { 200: VerifyReport } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query;
    if (q.filter && q.filter !== 'failed' && q.filter !== 'all') throw badInput('filter must be failed or all');
    const r = await verifyReport(deps.ctx, { viewer: viewerOf(req), runId: q.runId, failedOnly: q.filter === 'failed' });
    if (!r) throw notFound(q.runId ? `verify run ${q.runId} not found` : 'no verification run yet (stella evidence verify --mode quick)');
    return r;
  });
}

/** HTTP routes of replay; contracts in src/contracts/replay.ts. Bundles are served only to replay:read tokens of the right tenant (runbook §2.4). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { replayVerifyNightly } from '../../../workflows/replay';
import { Accepted } from '../../contracts/common';
import {
  LedgerCheck,
  ListRunsQuery,
  ReplayResult,
  ReplayRun,
  ReplayRunList,
  RunExplain,
  RunKit,
  ScanIdParams,
  SyncBody,
  SyncResponse,
  VerifyRunBody,
  VerifyRunQuery,
} from '../../contracts/replay';
import { ledgerCheck } from '../../core/replay/ledger';
import { getRun, getRunExplain, listRuns, runKit, verifyRun } from '../../core/replay/runs';
import { syncOfflineVerification } from '../../core/replay/sync';
import { replayNightlyManualWorkflowId } from '../../temporal/names';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';

export async function registerReplayRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  app.get('/replay/runs', { schema: { querystring: ListRunsQuery, response: { 200: ReplayRunList } } }, async (req) => {
    requireScope(req, 'replay:read');
    return { runs: await listRuns(ctx, tenantOf(req), { artifact: req.query.artifact, limit: req.query.limit }) };
  });

  app.get('/replay/runs/:scanId', { schema: { params: ScanIdParams, response: { 200: ReplayRun } } }, async (req) => {
    requireScope(req, 'replay:read');
    return getRun(ctx, tenantOf(req), req.params.scanId);
  });

  app.post(
    '/replay/runs/:scanId/verify',
    { schema: { params: ScanIdParams, querystring: VerifyRunQuery, body: VerifyRunBody, response: { 200: ReplayResult } } },
    async (req) => {
      requireScope(req, 'replay:read');
      const tenant = tenantOf(req);
      const { scanId } = req.params;
      const r = await verifyRun(ctx, tenant, scanId, 'on-demand', req.body?.strict ?? true);
      return req.query.ledger ? { ...r, ledger: await ledgerCheck(ctx, tenant, scanId) } : r;
    },
  );

  app.get('/replay/runs/:scanId/ledger', { schema: { params: ScanIdParams, response: { 200: LedgerCheck } } }, async (req) => {
    requireScope(req, 'replay:read');
    return ledgerCheck(ctx, tenantOf(req), req.params.scanId);
  });

  app.get('/replay/runs/:scanId/explain', { schema: { params: ScanIdParams, response: { 200: RunExplain } } }, async (req) => {
    requireScope(req, 'replay:read');
    return getRunExplain(ctx, tenantOf(req), req.params.scanId);
  });

  app.get('/replay/runs/:scanId/kit', { schema: { params: ScanIdParams, response: { 200: RunKit } } }, async (req) => {
    requireScope(req, 'replay:read');
    return runKit(ctx, tenantOf(req), req.params.scanId);
  });

  app.post('/replay/sync', { schema: { body: SyncBody, response: { 200: SyncResponse } } }, async (req) => {
    const p = requireScope(req, 'replay:read');
    return syncOfflineVerification(ctx, tenantOf(req), p.sub, req.body);
  });

  app.post('/replay/nightly', { schema: { response: { 202: Accepted } } }, async (req, reply) => {
    requireScope(req, 'admin');
    const t = temporalOrThrow(deps);
    const workflowId = replayNightlyManualWorkflowId(new Date());
    await t.client.workflow.start(replayVerifyNightly, { taskQueue: t.taskQueue, workflowId, args: [{ latestN: ctx.cfg.schedules.replayLatestN }] });
    return reply.status(202).send({ workflowId });
  });
}

/** HTTP routes of Merkle anchoring (SP-003, INC-003); contracts in src/contracts/anchoring.ts. */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { anchorEvidence } from '../../../workflows/anchoring';
import {
  AnchorIdParams,
  AnchorInspection,
  ANCHOR_WAIT_DEFAULT_S,
  AnchorList,
  AnchorRunParams,
  AnchorRunStatus,
  AnchorVerifyResponse,
  CreateAnchorBody,
  CreateAnchorQuery,
  CreateAnchorResponse,
  EvidenceIdParams,
  ExportedAnchor,
  InclusionProofFile,
  ListAnchorsQuery,
  NewChainBody,
  NewChainResponse,
  ProofQuery,
  RecoverAnchorBody,
  RecoverAnchorResponse,
  VerifyAnchorsBody,
} from '../../contracts/anchoring';
import {
  anchorById,
  exportAnchorById,
  inclusionProofFor,
  inspectAnchor,
  listAnchors,
  newChain,
  recoverAnchor,
  verifyAnchors,
  withOperatorRootPack,
} from '../../core/anchoring';
import { badInput, notFound } from '../../lib/errors';
import { failureError, failureOf } from '../../temporal/failure';
import { anchorManualWorkflowId } from '../../temporal/names';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import type { App } from './evidence';
import { anchorStandardsRoutes, tlogRoutes } from './anchoring-tlog';
import { statusWithin } from '../../temporal/wait';

/** Anchoring routes, registered in this order (the OpenAPI document lists them so). */
const ROUTES: readonly ((app: App, deps: ApiDeps) => void)[] = [
  createAnchorRoute,
  anchorRunRoute,
  listVerifyChainRoutes,
  anchorStandardsRoutes,
  inspectRecoverProofRoutes,
  tlogRoutes,
];

export async function registerAnchoringRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  for (const register of ROUTES) register(app, deps);
}

/** On-demand anchoring (a workflow). */
function createAnchorRoute(app: App, deps: ApiDeps) {
  // SP-003 step 1: on-demand anchoring runs the same workflow as the schedule. It waits `?wait=`
  // seconds at most: a worker that is down or busy gets a 202 with where to follow it, not a hang.
  app.post(
    '/evidence/anchors',
    {
      schema: {
        body: CreateAnchorBody,
        querystring: CreateAnchorQuery,
        response: { 200: CreateAnchorResponse, 201: CreateAnchorResponse, 202: CreateAnchorResponse },
      },
    },
    async (req, reply) => {
      const p = requireScope(req, 'evidence:write');
      const b = req.body ?? {};
      const t = temporalOrThrow(deps);
      const workflowId = anchorManualWorkflowId(new Date(), randomUUID().slice(0, 8));
      const handle = await t.client.workflow.start(anchorEvidence, {
        taskQueue: t.taskQueue,
        workflowId,
        args: [{ reason: b.reason ?? 'manual', force: b.force ?? false, actor: p.sub }],
      });
      const wait = req.query.wait ?? ANCHOR_WAIT_DEFAULT_S;
      const status = await statusWithin(t.client, handle, wait * 1000);
      if (status === 'RUNNING') {
        const statusUrl = `/evidence/anchors/runs/${workflowId}`;
        const message = `anchoring ${workflowId} has not finished within ${wait}s (is a Temporal worker polling task queue ${t.taskQueue}?); follow it at ${statusUrl}`;
        return reply.status(202).send({ workflowId, status: 'running', message, statusUrl, anchor: null, leavesRead: 0, logSize: 0 });
      }
      const failure = await failureOf(handle.result());
      if (failure) throw failureError(`anchoring ${workflowId}`, failure);
      const result = await handle.result();
      return reply.status(result.status === 'created' ? 201 : 200).send({ workflowId, ...result });
    },
  );
}

/** An anchoring workflow's status, result or failure. */
function anchorRunRoute(app: App, deps: ApiDeps) {
  app.get('/evidence/anchors/runs/:workflowId', { schema: { params: AnchorRunParams, response: { 200: AnchorRunStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const { workflowId } = req.params;
    if (!workflowId.startsWith('stella-merkle-anchor-')) throw badInput('not an anchoring workflow id (stella-merkle-anchor-…)');
    const handle = temporalOrThrow(deps).client.workflow.getHandle<typeof anchorEvidence>(workflowId);
    let status: string;
    try {
      status = (await handle.describe()).status.name;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw notFound(`anchoring ${workflowId} not found`, undefined, { cause: e });
      throw e;
    }
    const result = status === 'COMPLETED' ? { workflowId, ...(await handle.result()) } : null;
    const failure = status === 'RUNNING' || status === 'COMPLETED' ? null : await failureOf(handle.result());
    return {
      workflowId,
      status,
      result,
      error: failure?.message ?? (status === 'RUNNING' || result ? null : status.toLowerCase()),
      errorCode: failure?.code ?? null,
    };
  });
}

/** List anchors, verify them, start a new chain. */
function listVerifyChainRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/anchors', { schema: { querystring: ListAnchorsQuery, response: { 200: AnchorList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query;
    return listAnchors(ctx, { before: q.before, limit: q.limit, chainId: q.chain, showLinks: q.links === 'true' });
  });

  app.post('/evidence/anchors/verify', { schema: { body: VerifyAnchorsBody, response: { 200: AnchorVerifyResponse } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const b = req.body ?? { scope: 'latest' as const };
    // An operator-supplied RootPack (e.g. from an offline kit) is trusted in addition to ours.
    const rootPack = b.rootPack === undefined ? undefined : await withOperatorRootPack(ctx, b.rootPack);
    const r = await verifyAnchors(ctx, { scope: b.scope, ...(rootPack ? { rootPack } : {}) });
    return b.verbose ? r : { ...r, steps: undefined };
  });

  app.post('/evidence/anchors/new-chain', { schema: { body: NewChainBody, response: { 201: NewChainResponse } } }, async (req, reply) => {
    const p = requireScope(req, 'admin');
    const r = await newChain(ctx, { reason: req.body.reason, actor: p.sub });
    return reply.status(201).send(r);
  });
}

/** One anchor: inspect, export, recover; an item's inclusion proof. */
function inspectRecoverProofRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/anchors/:id', { schema: { params: AnchorIdParams, response: { 200: AnchorInspection } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return inspectAnchor(ctx, req.params.id);
  });

  app.get('/evidence/anchors/:id/export', { schema: { params: AnchorIdParams, response: { 200: ExportedAnchor } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params;
    return exportAnchorById(ctx, id === 'latest' ? 'latest' : (await anchorById(ctx, id)).id);
  });

  app.post(
    '/evidence/anchors/:id/recover',
    { schema: { params: AnchorIdParams, body: RecoverAnchorBody, response: { 200: RecoverAnchorResponse } } },
    async (req) => {
      const p = requireScope(req, 'admin');
      return recoverAnchor(ctx, { id: req.params.id, source: req.body?.source ?? 'backup', actor: p.sub });
    },
  );

  app.get('/evidence/:id/proof', { schema: { params: EvidenceIdParams, querystring: ProofQuery, response: { 200: InclusionProofFile } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return inclusionProofFor(ctx, tenantOf(req), req.params.id, req.query.anchor || undefined);
  });
}

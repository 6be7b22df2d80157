/** Evidence Locker runbook routes: status, store, provenance, chain, index, storage, repair, bulk ingest. */
import { rootFailure, type WorkflowFailure } from '../../temporal/failure';
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { bulkIngest, bulkIngestProgressQuery } from '../../../workflows/evidence';
import { evidenceIndexRebuild, evidenceIngestArchive } from '../../../workflows/locker';
import {
  AcknowledgeBody,
  Acknowledgement,
  AcknowledgementList,
  AcknowledgementQuery,
  BulkIngestBody,
  BulkIngestStarted,
  BulkIngestStatus,
  BulkIngestStatusQuery,
  Chain,
  ChainQuery,
  IdParams,
  IndexLookup,
  IndexStatus,
  IndexStatusQuery,
  LatestOp,
  LatestOpQuery,
  LockerStatus,
  MarkCorruptedBody,
  MarkCorruptedResult,
  OpIdParams,
  OpStarted,
  OptimizeResult,
  Provenance,
  RebuildStatus,
  RecoverBody,
  RecoverResult,
  RefreshBody,
  RefreshResult,
  RetryStoreBody,
  RetryStoreResult,
  StorageAnalyze,
  StorageAnalyzeQuery,
  StorageCheck,
  StorageStats,
  StorageStatsQuery,
  StorageTest,
  StoreHealth,
  TombstoneResult,
  WorkflowIdParams,
} from '../../contracts/locker';
import { validateDigest, validateKind } from '../../core/evidence';
import { ingestSourceKind } from '../../core/evidence/locker/archive-ingest';
import { evidenceChain, provenanceShow } from '../../core/evidence/locker/graph';
import { getOp, indexLookup, indexOptimize, indexRefresh, indexStatus, latestOp, opStart, recordIngest, settleOp } from '../../core/evidence/locker/index-ops';
import { markCorrupted, recover, retryStore } from '../../core/evidence/locker/repair';
import { acknowledge, listAcks, tombstone } from '../../core/evidence/locker/lifecycle';
import { REPLAY_COPY_PREFIX } from '../../core/evidence/locker/verify';
import { lockerStatus } from '../../core/evidence/locker/status';
import { spoolWorkDir, storageAnalyze, storageCheck, storageTest, storageStats, storeHealth } from '../../core/evidence/locker/storage';
import { badInput, notFound, StellaError } from '../../lib/errors';
import { indexRebuildWorkflowId, ingestWorkflowId, isIngestWorkflowId } from '../../temporal/names';
import { liveProgress } from '../../temporal/progress';
import { statusWithin } from '../../temporal/wait';
import { type ApiDeps, requireScope, temporalOrThrow, tenantOf, viewerOf } from '../deps';
import type { App } from './evidence';

const isAdmin = (scopes: string[]) => scopes.includes('admin');
/** An admin not acting for a named tenant sees the whole (shared) store. */
const wholeLocker = (req: { headers: Record<string, unknown> }, scopes: string[]) => isAdmin(scopes) && !req.headers['x-stella-tenant'];
const actorOf = (sub: string) => `api:${sub}`;

/** Evidence Locker runbook operations (status, index, storage, repair, chain, bulk ingest). */
export async function registerLockerRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  for (const register of [overviewRoutes, indexRoutes, storageRoutes, repairRoutes, ingestRoutes]) register(app, deps);
}

function overviewRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/status', { schema: { response: { 200: LockerStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return lockerStatus(ctx, tenantOf(req));
  });
  app.get('/evidence/store/health', { schema: { response: { 200: StoreHealth } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return storeHealth(ctx);
  });
  app.get('/evidence/:id/provenance', { schema: { params: IdParams, response: { 200: Provenance } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return provenanceShow(ctx, tenantOf(req), validateDigest(req.params.id, 'evidence id'));
  });
  app.get('/evidence/chain', { schema: { querystring: ChainQuery, response: { 200: Chain } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return evidenceChain(ctx, tenantOf(req), validateDigest(req.query.artifact, 'artifact digest'));
  });
  app.get('/evidence/ops/latest', { schema: { querystring: LatestOpQuery, response: { 200: LatestOp } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return (await latestOp(ctx.db, viewerOf(req), req.query.op)) ?? {};
  });
}

function indexRoutes(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.get('/evidence/index/status', { schema: { querystring: IndexStatusQuery, response: { 200: IndexStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return indexStatus(ctx, viewerOf(req), { full: req.query.full, sample: req.query.sample });
  });
  app.post('/evidence/index/refresh', { schema: { body: RefreshBody, response: { 200: RefreshResult } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return indexRefresh(ctx, tenantOf(req), actorOf(p.sub), { dryRun: req.body.dryRun });
  });
  app.post('/evidence/index/rebuild', { schema: { response: { 202: OpStarted } } }, async (req, reply) => {
    // Scans the whole (shared) store and writes index rows: administrators only.
    const p = requireScope(req, 'admin');
    const t = temporalOrThrow(deps);
    const opId = indexRebuildWorkflowId(new Date(), randomUUID().slice(0, 8));
    const input = { opId, tenant: tenantOf(req), actor: actorOf(p.sub) };
    // Recorded (with its tenant) before the workflow starts: the status route resolves the id within the tenant.
    await opStart(ctx.db, { id: opId, tenant: input.tenant, op: 'index.rebuild', actor: input.actor, workflowId: opId });
    await t.client.workflow.start(evidenceIndexRebuild, { taskQueue: t.taskQueue, workflowId: opId, args: [input] });
    return reply.status(202).send({ opId, workflowId: opId });
  });
  app.get('/evidence/index/rebuild/:opId', { schema: { params: OpIdParams, response: { 200: RebuildStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const { opId } = req.params;
    const op = await getOp(ctx.db, viewerOf(req), 'index.rebuild', opId, 'index rebuild');
    const workflowStatus = await describeStatus(deps, opId, `index rebuild ${opId} not found`);
    return { opId, workflowStatus, ...op };
  });
  app.post('/evidence/index/optimize', { schema: { response: { 200: OptimizeResult } } }, async (req) => {
    const p = requireScope(req, 'admin');
    return indexOptimize(ctx, tenantOf(req), actorOf(p.sub));
  });
  app.get('/evidence/index/lookup/:id', { schema: { params: IdParams, response: { 200: IndexLookup } } }, async (req) => {
    const p = requireScope(req, 'evidence:read');
    // Admins see every tenant's row for the id; others only their own.
    const tenants = wholeLocker(req, p.scopes) ? '*' : [tenantOf(req)];
    return indexLookup(ctx, validateDigest(req.params.id, 'evidence id'), tenants);
  });
}

function storageRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/storage/stats', { schema: { querystring: StorageStatsQuery, response: { 200: StorageStats } } }, async (req) => {
    const p = requireScope(req, 'evidence:read');
    if (req.query.allTenants && !isAdmin(p.scopes)) throw new StellaError('FORBIDDEN', 'all-tenant statistics need the admin scope');
    return storageStats(ctx, tenantOf(req), req.query.allTenants);
  });
  app.get('/evidence/storage/check/:id', { schema: { params: IdParams, response: { 200: StorageCheck } } }, async (req) => {
    const p = requireScope(req, 'evidence:read');
    // Admins may check any blob of the shared store; others only their tenant's items.
    return storageCheck(ctx, tenantOf(req), validateDigest(req.params.id, 'evidence id'), { allTenants: wholeLocker(req, p.scopes) });
  });
  app.post('/evidence/storage/test', { schema: { response: { 200: StorageTest } } }, async (req) => {
    requireScope(req, 'evidence:write');
    return storageTest(ctx);
  });
  app.get('/evidence/storage/analyze', { schema: { querystring: StorageAnalyzeQuery, response: { 200: StorageAnalyze } } }, async (req) => {
    const p = requireScope(req, 'evidence:read');
    const q = req.query;
    if (q.allTenants && !isAdmin(p.scopes)) throw new StellaError('FORBIDDEN', 'all-tenant analysis needs the admin scope');
    return storageAnalyze(ctx, tenantOf(req), { sort: q.sort, limit: q.limit, allTenants: q.allTenants });
  });
}

function repairRoutes(app: App, { ctx }: ApiDeps) {
  app.post('/evidence/:id/mark-corrupted', { schema: { params: IdParams, body: MarkCorruptedBody, response: { 200: MarkCorruptedResult } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return markCorrupted(ctx, tenantOf(req), validateDigest(req.params.id, 'evidence id'), req.body.reason, actorOf(p.sub));
  });
  app.post('/evidence/:id/recover', { schema: { params: IdParams, body: RecoverBody, response: { 200: RecoverResult } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    const id = validateDigest(req.params.id, 'evidence id');
    const replay = req.body.area === 'replay';
    return recover(ctx, tenantOf(req), replay ? `${REPLAY_COPY_PREFIX}${id}` : id, req.body.source ?? (replay ? 'locker' : 'replica'), actorOf(p.sub));
  });
  app.post('/evidence/integrity/acknowledgements', { schema: { body: AcknowledgeBody, response: { 200: Acknowledgement } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return acknowledge(ctx, viewerOf(req), req.body.id, req.body.reason, actorOf(p.sub));
  });
  app.get('/evidence/integrity/acknowledgements', { schema: { querystring: AcknowledgementQuery, response: { 200: AcknowledgementList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { acknowledgements: await listAcks(ctx, tenantOf(req)) };
  });
  app.post('/evidence/:id/tombstone', { schema: { params: IdParams, body: MarkCorruptedBody, response: { 200: TombstoneResult } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return tombstone(ctx, tenantOf(req), validateDigest(req.params.id, 'evidence id'), req.body.reason, actorOf(p.sub));
  });
  app.post('/evidence/retry-store', { schema: { body: RetryStoreBody, response: { 200: RetryStoreResult } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return retryStore(ctx, tenantOf(req), validateDigest(req.body.artifact, 'artifact digest'), actorOf(p.sub));
  });
}

/** Bulk ingest of a server-side directory or tar (workflows/evidence.ts bulkIngest, workflows/locker.ts). */
function ingestRoutes(app: App, deps: ApiDeps) {
  app.post('/evidence/ingest', { schema: { body: BulkIngestBody, response: { 202: BulkIngestStarted } } }, async (req, reply) => {
    // Reads paths on the worker's machine: administrators only.
    const p = requireScope(req, 'admin');
    const b = req.body;
    const kind = validateKind(b.kind);
    validateDigest(b.artifact, 'artifact digest');
    const source = await ingestSourceKind(b.path);
    const t = temporalOrThrow(deps);
    const workflowId = ingestWorkflowId(new Date(), randomUUID().slice(0, 8));
    const base = { tenant: tenantOf(req), kind, artifact: b.artifact, mediaType: b.mediaType, actor: actorOf(p.sub) };
    // Recorded (with its tenant) before the workflow starts: the status route resolves the id within the tenant.
    await recordIngest(deps.ctx.db, { id: workflowId, tenant: base.tenant, actor: base.actor });
    const batchSize = b.batchSize ?? 200;
    if (source === 'tar') {
      // Extracted by the worker with the safe extractor (src/archive) into its own spool directory.
      const workDirPath = spoolWorkDir(deps.ctx.cfg.dataDir, workflowId);
      const args = [{ ...base, archive: b.path, workDir: workflowId, workDirPath }, batchSize] as const;
      await t.client.workflow.start(evidenceIngestArchive, { taskQueue: t.taskQueue, workflowId, args: [...args] });
    } else {
      await t.client.workflow.start(bulkIngest, { taskQueue: t.taskQueue, workflowId, args: [{ ...base, dir: b.path }, batchSize] });
    }
    return reply.status(202).send({ workflowId });
  });
  // `?wait=N`: answer as soon as the ingest ends, or after N seconds with its progress (the CLI's follow loop).
  app.get(
    '/evidence/ingest/:workflowId',
    { schema: { params: WorkflowIdParams, querystring: BulkIngestStatusQuery, response: { 200: BulkIngestStatus } } },
    async (req) => {
      requireScope(req, 'evidence:read');
      const { workflowId } = req.params;
      if (!isIngestWorkflowId(workflowId)) throw badInput('not an ingest workflow id');
      const op = await getOp(deps.ctx.db, viewerOf(req), 'ingest', workflowId, 'ingest');
      const t = temporalOrThrow(deps);
      const h = t.client.workflow.getHandle<typeof bulkIngest>(workflowId);
      let status = await describeStatus(deps, workflowId, `ingest ${workflowId} not found`);
      if (status === 'RUNNING' && req.query.wait) status = await statusWithin(t.client, h, req.query.wait * 1000);
      const running = status === 'RUNNING';
      const progress = running ? await liveProgress(h, bulkIngestProgressQuery) : null;
      const result = status === 'COMPLETED' ? await h.result() : null;
      const failure = running || status === 'COMPLETED' ? null : await failureOf(h.result());
      if (op.status === 'running' && !running) await settleOp(deps.ctx.db, workflowId, status === 'COMPLETED' ? 'succeeded' : 'failed');
      return { workflowId, status, progress, result, error: failure?.message ?? null, errorCode: failure?.code ?? null };
    },
  );
}

/** A workflow's status name, or NOT_FOUND with `missing`. */
async function describeStatus(deps: ApiDeps, workflowId: string, missing: string): Promise<string> {
  try {
    return (await temporalOrThrow(deps).client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(missing, undefined, { cause: e });
    throw e;
  }
}

/** Why a failed workflow failed: its root cause's message and code (src/temporal/failure.ts). */
function failureOf(result: Promise<unknown>): Promise<WorkflowFailure | null> {
  return result.then(() => null, rootFailure);
}

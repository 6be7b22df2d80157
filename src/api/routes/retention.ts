/** Retention routes: legal holds, policies and tiers, purge / tier-move runs (workflows), temp cleanup, archive. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps, type Principal } from '../deps';
import type { App } from './evidence';
import { applyDeclaration, effectivePolicies, retentionPolicySection, setTiers, getTiers } from '../../core/retention/policy';
import { createHold, listHolds, getHold, releaseHold, holdsFor, holdTimeline } from '../../core/retention/holds';
import { getRun, listRuns, runItems, openPromotionArtifacts, startRun } from '../../core/retention/purge';
import { archivePlan, streamArchive, deleteArchived, cleanupTemp } from '../../core/retention/archive';
import { retentionRunId } from '../../temporal/names';
import { failureOf } from '../../temporal/failure';
import { liveProgress } from '../../temporal/progress';
import { retentionProgressQuery, retentionPurge, retentionTierMove } from '../../../workflows/retention';
import {
  ArchiveDeleteBody,
  ArchiveDeleted,
  ArchivePlan,
  ArchiveQuery,
  CleanupTempBody,
  CleanupTempResult,
  EffectivePolicies,
  Hold,
  HoldCreateBody,
  HoldListAnswer,
  HoldListQuery,
  HoldParams,
  HoldTimeline,
  HoldTimelineQuery,
  HoldReleaseBody,
  HoldReleaseQuery,
  PolicyApplied,
  PolicyApplyBody,
  PurgeBody,
  RetentionPolicySection,
  RunItems,
  RunItemsQuery,
  RunList,
  RunListQuery,
  RunParams,
  RunStarted,
  RunStatus,
  Tiers,
  TiersBody,
  TiersView,
  TierMoveBody,
} from '../../contracts/retention';

const newRunId = (kind: 'purge' | 'dryrun' | 'tier') => retentionRunId(kind, new Date(), randomUUID().slice(0, 8));

/** Replay bundles follow their own scope (runbook §2.4): without replay:read, proved with DPoP, they are left out of archives. */
const mayReadReplay = (p: Principal) => (p.scopes.includes('replay:read') || p.scopes.includes('admin')) && p.dpop === true;

/** Retention routes, registered in this order (the OpenAPI document lists them so). */
const ROUTES: readonly ((app: App, deps: ApiDeps) => void)[] = [
  holdRoutes,
  policyRoutes,
  runStartRoutes,
  runReadRoutes,
  cleanupTempRoute,
  archiveRoute,
  archivePlanDeleteRoutes,
];

export async function registerRetentionRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  for (const register of ROUTES) register(app, deps);
}

/** Legal holds (replay runbook §2.3 / §3). */
function holdRoutes(app: App, { ctx }: ApiDeps) {
  app.post('/evidence/holds', { schema: { body: HoldCreateBody, response: { 201: Hold } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const hold = await createHold(ctx, { tenant: tenantOf(req), ...req.body, actor: p.sub });
    return reply.status(201).send(hold);
  });
  app.get('/evidence/holds', { schema: { querystring: HoldListQuery, response: { 200: HoldListAnswer } } }, async (req) => {
    requireScope(req, 'evidence:read');
    if (req.query.item) return { holds: await holdsFor(ctx.db, tenantOf(req), req.query.item) };
    return { holds: await listHolds(ctx.db, tenantOf(req), { includeReleased: req.query.all === true }) };
  });
  app.get('/evidence/holds/:id/timeline', { schema: { params: HoldParams, querystring: HoldTimelineQuery, response: { 200: HoldTimeline } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return holdTimeline(ctx.db, tenantOf(req), req.params.id);
  });
  app.get('/evidence/holds/:id', { schema: { params: HoldParams, response: { 200: Hold } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return getHold(ctx.db, tenantOf(req), req.params.id);
  });
  app.delete(
    '/evidence/holds/:id',
    { schema: { params: HoldParams, body: HoldReleaseBody, querystring: HoldReleaseQuery, response: { 200: Hold } } },
    async (req) => {
      const p = requireScope(req, 'evidence:write');
      const reason = (req.body?.reason ?? req.query.reason) || undefined;
      return releaseHold(ctx, { tenant: tenantOf(req), id: req.params.id, actor: p.sub, reason });
    },
  );
}

/** Retention policies and tiers. */
function policyRoutes(app: App, { ctx }: ApiDeps) {
  app.post('/evidence/retention/policies', { schema: { body: PolicyApplyBody, response: { 200: PolicyApplied, 201: PolicyApplied } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const r = await applyDeclaration(ctx, { tenant: tenantOf(req), input: req.body, actor: p.sub });
    return reply.status(r.changed ? 201 : 200).send(r);
  });
  app.get('/evidence/retention/policies', { schema: { response: { 200: RetentionPolicySection } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return retentionPolicySection(ctx.db, tenantOf(req));
  });
  app.get('/evidence/retention/tiers', { schema: { response: { 200: TiersView } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return getTiers(ctx.db, tenantOf(req));
  });
  app.put('/evidence/retention/tiers', { schema: { body: TiersBody, response: { 200: Tiers } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return setTiers(ctx.db, tenantOf(req), req.body, p.sub);
  });
  // Effective retention per bundle type (also used by `stella evidence policy show`).
  app.get('/evidence/retention/effective', { schema: { response: { 200: EffectivePolicies } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return effectivePolicies(ctx.db, tenantOf(req));
  });
}

/** Runs: purge (cleanup --apply-retention) and tier move, as durable workflows. */
function runStartRoutes(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.post('/evidence/retention/purge', { schema: { body: PurgeBody, response: { 202: RunStarted } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const t = temporalOrThrow(deps);
    const runId = newRunId(req.body.dryRun ? 'dryrun' : 'purge');
    const input = { tenant: tenantOf(req), ...req.body, actor: p.sub, runId };
    // The run row (with its tenant) exists before the workflow: its id resolves within the tenant at once.
    await startRun(ctx.db, { ...input, kind: 'purge', reason: input.reason ?? null });
    await t.client.workflow.start(retentionPurge, { taskQueue: t.taskQueue, workflowId: runId, args: [input] });
    return reply.status(202).send({ runId, workflowId: runId });
  });
  app.post('/evidence/retention/tier-move', { schema: { body: TierMoveBody, response: { 202: RunStarted } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const t = temporalOrThrow(deps);
    const runId = newRunId('tier');
    const input = { tenant: tenantOf(req), actor: p.sub, runId, batchSize: req.body?.batchSize };
    await startRun(ctx.db, { runId, tenant: input.tenant, kind: 'tier-move', actor: p.sub });
    await t.client.workflow.start(retentionTierMove, { taskQueue: t.taskQueue, workflowId: runId, args: [input] });
    return reply.status(202).send({ runId, workflowId: runId });
  });
}

/** Run list, status (with its workflow) and items. */
function runReadRoutes(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.get('/evidence/retention/runs', { schema: { querystring: RunListQuery, response: { 200: RunList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { runs: await listRuns(ctx.db, tenantOf(req), req.query.limit) };
  });
  app.get('/evidence/retention/runs/:runId', { schema: { params: RunParams, response: { 200: RunStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const { runId } = req.params;
    // Resolved within the tenant first (the API records a run before starting its workflow).
    const run = await getRun(ctx.db, runId, tenantOf(req));
    return { runId, ...(await workflowStatus(deps, runId)), run };
  });
  app.get('/evidence/retention/runs/:runId/items', { schema: { params: RunParams, querystring: RunItemsQuery, response: { 200: RunItems } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const tenant = tenantOf(req);
    await getRun(ctx.db, req.params.runId, tenant);
    return runItems(ctx.db, req.params.runId, { tenant, limit: req.query.limit, after: req.query.after });
  });
}

/** cleanup --temp-only. */
function cleanupTempRoute(app: App, { ctx }: ApiDeps) {
  app.post('/evidence/cleanup/temp', { schema: { body: CleanupTempBody, response: { 200: CleanupTempResult } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    const minutes = req.body.olderThanMinutes;
    return cleanupTemp(ctx, {
      tenant: tenantOf(req),
      actor: p.sub,
      dryRun: req.body.dryRun,
      olderThanMs: minutes === undefined ? undefined : minutes * 60_000,
    });
  });
}

/** Archive: a streamed manifest tar (raw bytes, so no response schema). */
function archiveRoute(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/archive', { schema: { querystring: ArchiveQuery } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:read');
    const tenant = tenantOf(req);
    const days = req.query.olderThanDays;
    const includeReplay = mayReadReplay(p);
    const plan = await archivePlan(ctx, tenant, days, includeReplay);
    const w = streamArchive(ctx, {
      tenant,
      olderThanDays: days,
      includeReplay,
      skippedReplayBundles: plan.skippedReplayBundles,
      onError: (e) => ctx.log.error({ err: e.message }, 'evidence archive aborted'),
    });
    reply
      .header('content-type', 'application/x-tar')
      .header('x-stella-archive-items', String(plan.items))
      .header('x-stella-archive-bytes', String(plan.bytes))
      .header('x-stella-archive-skipped-replay', String(plan.skippedReplayBundles));
    return reply.send(w.readable);
  });
}

/** Archive plan and deletion of archived items. */
function archivePlanDeleteRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/archive/plan', { schema: { querystring: ArchiveQuery, response: { 200: ArchivePlan } } }, async (req) => {
    const p = requireScope(req, 'evidence:read');
    return archivePlan(ctx, tenantOf(req), req.query.olderThanDays, mayReadReplay(p));
  });
  app.post('/evidence/archive/delete', { schema: { body: ArchiveDeleteBody, response: { 200: ArchiveDeleted } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    const tenant = tenantOf(req);
    return deleteArchived(ctx, {
      tenant,
      ids: req.body.ids,
      actor: p.sub,
      manifestSha256: req.body.manifestSha256,
      protectedArtifacts: await openPromotionArtifacts(ctx.db, tenant),
    });
  });
}

/** The run's workflow status and live progress; UNKNOWN when Temporal is not connected or has no such workflow. */
type WorkflowState = Pick<z.infer<typeof RunStatus>, 'status' | 'progress' | 'error' | 'errorCode'>;

async function workflowStatus(deps: ApiDeps, runId: string): Promise<WorkflowState> {
  const unknown = { status: 'UNKNOWN', progress: null, error: null, errorCode: null };
  if (!deps.temporal) return unknown;
  try {
    const h = deps.temporal.client.workflow.getHandle(runId);
    const status = (await h.describe()).status.name;
    const progress = status === 'RUNNING' ? await liveProgress(h, retentionProgressQuery) : null;
    // A failed run says why: its root cause's message and code (src/temporal/failure.ts).
    const failure = status === 'RUNNING' || status === 'COMPLETED' ? null : await failureOf(h.result());
    return { status, progress, error: failure?.message ?? null, errorCode: failure?.code ?? null };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return unknown;
    throw e;
  }
}

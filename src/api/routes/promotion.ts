/** HTTP routes of promotions and promotion policies: parse → call (src/temporal/promotion, core) → reply. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  ActionResponse,
  EvidenceQuery,
  ListPromotionsQuery,
  ListPromotionsResponse,
  PolicyEnvParams,
  PromotionEvidenceResponse,
  PromotionIdParams,
  PromotionView,
  RetryQuery,
  RetryResponse,
  SetPolicyBody,
  SetPolicyResponse,
  ShowPolicyQuery,
  ShowPolicyResponse,
  SignalBody,
  SignalledResponse,
  StartPromotionBody,
  StartPromotionQuery,
  StartPromotionResponse,
  WAIT_MAX_S,
} from '../../contracts/promotion';
import { scanProgressQuery, scanThenAttest } from '../../../workflows/scan';
import { validateDigest } from '../../core/evidence';
import { handlePromoteTrigger } from '../../core/scan/events';
import { resolvePromotionTarget } from '../../core/promotion/target';
import { DEFAULT_POLICY, listPolicies, policyChecksum, resolvePolicy, setPolicy, validateEnv } from '../../core/promotion/policy';
import { listPromotionRows } from '../../core/promotion/store';
import { badInput } from '../../lib/errors';
import {
  listPromotionWorkflows,
  locatePromotion,
  missingOf,
  type PromotionActor,
  promotionView,
  signalRetry,
  startPromotion,
  updatePromotion,
  waitForPromotion,
} from '../../temporal/promotion';
import { type ApiDeps, requireScope, temporalOrThrow, tenantOf } from '../deps';
import type { App } from './evidence';

/** Seconds to long-poll: `?wait=true|<s>` (or the body's `wait`), `?timeout=<s>` overriding; 0 = don't wait. */
function waitSeconds(q: { wait?: string; timeout?: string }, bodyWait: boolean | number | undefined): number {
  const raw = q.wait ?? (bodyWait === undefined ? undefined : String(bodyWait));
  if (raw === undefined || raw === 'false' || raw === '0') return 0;
  const n = Number(q.timeout ?? (raw === 'true' ? '60' : raw));
  if (!Number.isInteger(n) || n < 0 || n > WAIT_MAX_S) throw badInput(`wait timeout must be 0..${WAIT_MAX_S} seconds`);
  return n;
}

/** Promotion routes, registered in this order (the OpenAPI document lists them so). */
const ROUTES: readonly ((app: App, deps: ApiDeps) => void)[] = [startRoute, readRoutes, retryRoute, approveAbortRoutes, policyRoutes];

export async function registerPromotionRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  for (const register of ROUTES) register(app, deps);
}

/** What the routes share: the database, a promotion located within the tenant, and the acting caller. */
function helpers(deps: ApiDeps) {
  const { db } = deps.ctx;
  const locate = (tenant: string, id: string) => locatePromotion(temporalOrThrow(deps), db, tenant, id);
  /** The caller as the API verified them: their token subject signs approve/abort/retry. */
  const actor = (sub: string, tenant: string): PromotionActor => ({ db, keys: deps.ctx.keys, tenant, by: sub });
  return { db, locate, actor };
}

/** Start a promotion (optionally waiting for its outcome). */
function startRoute(app: App, deps: ApiDeps) {
  const { db, locate } = helpers(deps);
  app.post(
    '/promotions',
    { schema: { body: StartPromotionBody, querystring: StartPromotionQuery, response: { 200: StartPromotionResponse, 202: StartPromotionResponse } } },
    async (req, reply) => {
      const p = requireScope(req, 'promotion:write');
      const tenant = tenantOf(req);
      const b = req.body;
      const toEnv = b.to ?? b.toEnv;
      if (!toEnv) throw badInput('to (target environment) is required');
      const given = b.artifact ?? b.artifactDigest;
      if (given) validateDigest(given, 'artifact digest');
      validateEnv(toEnv, 'target environment');
      const fromEnv = b.from ?? b.fromEnv ?? 'unspecified';
      validateEnv(fromEnv, 'source environment');
      if (fromEnv === toEnv) throw badInput(`source and target environment are both ${toEnv}`);
      const wait = waitSeconds(req.query, b.wait);
      const temporal = temporalOrThrow(deps);
      // A registry reference is resolved to its digest here, before anything starts; from then on only the digest gates.
      const target = await resolvePromotionTarget(deps.ctx, tenant, { ...(given ? { artifact: given } : {}), ...(b.imageRef ? { image: b.imageRef } : {}) });
      const artifact = target.artifactDigest;
      const input = { tenant, artifactDigest: artifact, fromEnv, toEnv, requestedBy: p.sub, ...(target.imageRef ? { imageRef: target.imageRef } : {}) };
      // The `promote` auto-scan trigger: an unscanned digest gets its scan queued (recorded in scan_events).
      const scanWorkflows = { ...temporal, workflow: scanThenAttest, progress: scanProgressQuery };
      const scan = await handlePromoteTrigger(deps.ctx, scanWorkflows, tenant, p.sub, {
        artifactDigest: artifact,
        ...(target.imageRef ? { image: target.imageRef } : {}),
      });
      const started = await startPromotion(temporal, db, input);
      const { workflowId, runId, joined } = started;
      const message = joined
        ? `a promotion of ${artifact} to ${toEnv} is already running (${workflowId}); joined it instead of starting another`
        : `promotion ${workflowId} started`;
      const base = {
        id: workflowId,
        promotionId: runId,
        workflowId,
        runId,
        joined,
        message,
        ...(target.resolvedFrom ? { resolvedFrom: target.resolvedFrom } : {}),
        ...(scan ? { scan } : {}),
      };
      if (!wait) return reply.status(202).send(base);
      const finished = await waitForPromotion(started.handle, wait);
      const status = await promotionView(db, tenant, await locate(tenant, workflowId));
      return reply.status(finished ? 200 : 202).send({ ...status, ...base, final: finished });
    },
  );
}

/** List promotions, one promotion, its evidence. */
function readRoutes(app: App, deps: ApiDeps) {
  const { db, locate } = helpers(deps);
  app.get('/promotions', { schema: { querystring: ListPromotionsQuery, response: { 200: ListPromotionsResponse } } }, async (req) => {
    requireScope(req, 'promotion:read');
    const tenant = tenantOf(req);
    const q = req.query;
    if (q.artifact) validateDigest(q.artifact, 'artifact digest');
    if (q.env) validateEnv(q.env);
    const limit = Math.min(Math.max(Number(q.limit ?? 50) || 50, 1), 500);
    if (q.source === 'db') return { source: 'db' as const, items: await listPromotionRows(db, { tenant, state: q.state, artifact: q.artifact, limit }) };
    const listed = await listPromotionWorkflows(temporalOrThrow(deps), tenant, { state: q.state, artifact: q.artifact, env: q.env }, limit);
    return { source: 'temporal-visibility' as const, ...listed };
  });

  app.get('/promotions/:id', { schema: { params: PromotionIdParams, response: { 200: PromotionView } } }, async (req) => {
    requireScope(req, 'promotion:read');
    const tenant = tenantOf(req);
    const ui = { baseUrl: deps.ctx.cfg.temporal.uiUrl, namespace: deps.ctx.cfg.temporal.namespace };
    return promotionView(db, tenant, await locate(tenant, req.params.id), ui);
  });

  app.get(
    '/promotions/:id/evidence',
    { schema: { params: PromotionIdParams, querystring: EvidenceQuery, response: { 200: PromotionEvidenceResponse } } },
    async (req) => {
      requireScope(req, 'promotion:read');
      const tenant = tenantOf(req);
      const s = await promotionView(db, tenant, await locate(tenant, req.params.id));
      const missing = missingOf(s);
      const base = { id: s.workflowId, promotionId: s.promotionId, artifact: s.artifactDigest, to: s.toEnv, state: s.state, deadline: s.deadline };
      const m = req.query.missing;
      if (m === 'true' || m === '') return { ...base, missing };
      return { ...base, gates: s.gates, missing };
    },
  );
}

/** Retry: re-evaluate gates (update), or signal a retry. */
function retryRoute(app: App, deps: ApiDeps) {
  const { locate, actor } = helpers(deps);
  app.post(
    '/promotions/:id/retry',
    { schema: { params: PromotionIdParams, querystring: RetryQuery, response: { 200: RetryResponse, 202: SignalledResponse } } },
    async (req, reply) => {
      const p = requireScope(req, 'promotion:write');
      const tenant = tenantOf(req);
      const loc = await locate(tenant, req.params.id);
      if (req.query.mode === 'signal') {
        await signalRetry(actor(p.sub, tenant), loc);
        return reply.status(202).send({ id: loc.workflowId, promotionId: loc.runId, message: 'retry signalled; gates will be re-evaluated' });
      }
      // The update re-evaluates every gate and answers with the new results.
      const s = await updatePromotion(actor(p.sub, tenant), loc, 'retry');
      return reply.status(200).send({ ...s, id: loc.workflowId, missing: missingOf(s) });
    },
  );
}

/** Approve and abort. */
function approveAbortRoutes(app: App, deps: ApiDeps) {
  const { locate, actor } = helpers(deps);
  for (const op of ['approve', 'abort'] as const) {
    app.post(`/promotions/:id/${op}`, { schema: { params: PromotionIdParams, body: SignalBody, response: { 200: ActionResponse } } }, async (req) => {
      const p = requireScope(req, 'promotion:write');
      const tenant = tenantOf(req);
      const loc = await locate(tenant, req.params.id);
      const s = await updatePromotion(actor(p.sub, tenant), loc, op, req.body?.reason ?? req.body?.comment);
      const progress = s.state === 'waiting-approval' ? ` (${s.approvals.length}/${s.approvalsRequired} approvals)` : '';
      return { ...s, id: loc.workflowId, message: `${op === 'abort' ? 'aborted' : 'approved'} by ${p.sub}; promotion is ${s.state}${progress}` };
    });
  }
}

/** Promotion policies. */
function policyRoutes(app: App, deps: ApiDeps) {
  const { db } = helpers(deps);
  app.get('/promotion-policies', { schema: { querystring: ShowPolicyQuery, response: { 200: ShowPolicyResponse } } }, async (req) => {
    requireScope(req, 'promotion:read');
    const tenant = tenantOf(req);
    const { env } = req.query;
    if (env) return { promotion: await resolvePolicy(db, tenant, env) };
    return {
      promotion: {
        policies: await listPolicies(db, tenant),
        builtIn: { source: 'built-in', policyEnv: 'built-in', version: null, checksum: policyChecksum(DEFAULT_POLICY), policy: DEFAULT_POLICY },
      },
    };
  });

  app.put('/promotion-policies/:env', { schema: { params: PolicyEnvParams, body: SetPolicyBody, response: { 200: SetPolicyResponse } } }, async (req) => {
    // Changing what a promotion must prove is separate from promoting: policy:admin (or admin).
    const p = requireScope(req, 'policy:admin');
    return setPolicy(db, { tenant: tenantOf(req), env: req.params.env, text: req.body.document, actor: p.sub });
  });
}

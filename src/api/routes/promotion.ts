import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { WorkflowNotFoundError, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import { badInput, conflict, notFound } from '../../lib/errors';
import { audit } from '../../core/audit';
import { validateDigest } from '../../core/evidence';
import { resolvePolicy, listPolicies, setPolicy, validateEnv, DEFAULT_POLICY, policyChecksum } from '../../core/promotion/policy';
import { findPromotion, listPromotionRows } from '../../core/promotion/store';
import { PROMOTION_STATES, promotionWorkflowId, type PromotionInput, type PromotionStatus } from '../../core/promotion/types';

const SA = {
  tenant: defineSearchAttributeKey('StellaTenant', SearchAttributeType.KEYWORD),
  artifact: defineSearchAttributeKey('StellaArtifactDigest', SearchAttributeType.KEYWORD),
  env: defineSearchAttributeKey('StellaEnvironment', SearchAttributeType.KEYWORD),
  state: defineSearchAttributeKey('StellaPromotionState', SearchAttributeType.KEYWORD),
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const WAIT_MAX_S = 300;

const startBody = z
  .object({
    artifact: z.string().optional(),
    artifactDigest: z.string().optional(),
    to: z.string().optional(),
    toEnv: z.string().optional(),
    from: z.string().optional(),
    fromEnv: z.string().optional(),
    imageRef: z.string().min(1).max(512).optional(),
    wait: z.union([z.boolean(), z.number().int().min(0).max(WAIT_MAX_S)]).optional(),
  })
  .strict();

type Located = { handle: WorkflowHandle; workflowId: string; runId: string; running: boolean; status: string };

/**
 * Finds a promotion by workflow id (`promotion-<tenant>-<env>-<hex>`, its newest run) or
 * by promotion id (the run id). The tenant must match the caller's.
 */
async function locate(deps: ApiDeps, tenant: string, id: string): Promise<Located> {
  const t = temporalOrThrow(deps);
  let workflowId: string;
  let runId: string | undefined;
  if (UUID_RE.test(id)) {
    const row = await findPromotion(deps.ctx.db, tenant, id);
    if (!row) throw notFound(`promotion ${id} not found`);
    workflowId = row.workflowId;
    runId = row.promotionId;
  } else if (id.startsWith('promotion-') && id.length < 300) {
    workflowId = id;
  } else throw badInput(`malformed promotion id ${JSON.stringify(id)}: expected promotion-<tenant>-<env>-<digest hex> or a promotion (run) id`);
  const handle = t.client.workflow.getHandle(workflowId, runId);
  try {
    const d = await handle.describe();
    const owner = d.typedSearchAttributes.get(SA.tenant);
    // Before its first workflow task a promotion may carry no tenant attribute yet: the id prefix decides then.
    const mine = owner !== undefined ? owner === tenant : workflowId.startsWith(`promotion-${tenant}-`);
    if (d.type !== 'promotion' || !mine) throw notFound(`promotion ${id} not found`);
    return {
      handle: t.client.workflow.getHandle(workflowId, d.runId),
      workflowId,
      runId: d.runId,
      running: d.status.name === 'RUNNING',
      status: d.status.name,
    };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(`promotion ${id} not found`);
    throw e;
  }
}

/** Live state by query while running, merged over the database record (which survives completion). */
async function statusOf(deps: ApiDeps, tenant: string, loc: Located): Promise<PromotionStatus & Record<string, unknown>> {
  const live = loc.running ? await loc.handle.query<PromotionStatus>('state').catch(() => null) : null;
  const row = await findPromotion(deps.ctx.db, tenant, loc.runId);
  if (!live && !row) {
    return {
      promotionId: loc.runId,
      workflowId: loc.workflowId,
      state: 'evaluating',
      gates: [],
      attempts: 0,
      deadline: null,
      approvals: [],
      temporalStatus: loc.status,
    } as never;
  }
  return { ...(row ?? {}), ...(live ?? {}), id: loc.workflowId, temporalStatus: loc.status } as never;
}

const missingOf = (s: PromotionStatus) => s.gates.filter((g) => g.required && !g.passed).map((g) => ({ gate: g.name, detail: g.detail, ...(g.missing ?? {}) }));

function waitSeconds(req: FastifyRequest, bodyWait: boolean | number | undefined): number {
  const q = req.query as Record<string, string | undefined>;
  const raw = q.wait ?? (bodyWait === undefined ? undefined : String(bodyWait));
  if (raw === undefined || raw === 'false' || raw === '0') return 0;
  const timeout = q.timeout ?? (raw === 'true' ? '60' : raw);
  const n = Number(timeout);
  if (!Number.isInteger(n) || n < 0 || n > WAIT_MAX_S) throw badInput(`wait timeout must be 0..${WAIT_MAX_S} seconds`);
  return n;
}

/** Long-poll: resolves when the workflow closes or after `seconds`, whichever is first. */
async function waitForResult(handle: WorkflowHandle, seconds: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = handle.result().then(
    () => true,
    (e) => (e instanceof WorkflowFailedError ? true : Promise.reject(e)),
  );
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), seconds * 1000);
  });
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function registerPromotionRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;

  app.post('/promotions', async (req, reply) => {
    const p = requireScope(req, 'promotion:write');
    const tenant = tenantOf(req);
    const b = startBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(`${b.error.issues[0]!.path.join('.') || 'body'}: ${b.error.issues[0]!.message}`);
    const artifact = b.data.artifact ?? b.data.artifactDigest;
    const toEnv = b.data.to ?? b.data.toEnv;
    if (!artifact) throw badInput('artifact (sha256:…) is required');
    if (!toEnv) throw badInput('to (target environment) is required');
    validateDigest(artifact, 'artifact digest');
    validateEnv(toEnv, 'target environment');
    const fromEnv = b.data.from ?? b.data.fromEnv ?? 'unspecified';
    validateEnv(fromEnv, 'source environment');
    if (fromEnv === toEnv) throw badInput(`source and target environment are both ${toEnv}`);
    const wait = waitSeconds(req, b.data.wait);
    const t = temporalOrThrow(deps);
    const input: PromotionInput = {
      tenant,
      artifactDigest: artifact,
      fromEnv,
      toEnv,
      requestedBy: p.sub,
      ...(b.data.imageRef ? { imageRef: b.data.imageRef } : {}),
    };
    const workflowId = promotionWorkflowId(tenant, toEnv, artifact);
    let handle: WorkflowHandle;
    let runId: string;
    let joined = false;
    try {
      const h = await t.client.workflow.start('promotion', {
        taskQueue: t.taskQueue,
        workflowId,
        args: [input],
        // One promotion per (tenant, artifact, target env) at a time; a new one once it is closed.
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        workflowIdConflictPolicy: 'FAIL',
        // Set at start so the Temporal UI lists it before the first workflow task runs.
        typedSearchAttributes: [
          { key: SA.tenant, value: tenant },
          { key: SA.artifact, value: artifact },
          { key: SA.env, value: toEnv },
          { key: SA.state, value: 'evaluating' },
        ],
      });
      handle = h;
      runId = h.firstExecutionRunId;
      await audit(ctx.db, {
        tenant,
        actor: p.sub,
        action: 'promotion.requested',
        target: artifact,
        details: { workflowId, promotionId: runId, from: fromEnv, to: toEnv },
      });
    } catch (e) {
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
      const d = await t.client.workflow.getHandle(workflowId).describe();
      handle = t.client.workflow.getHandle(workflowId, d.runId);
      runId = d.runId;
      joined = true;
    }
    const message = joined
      ? `a promotion of ${artifact} to ${toEnv} is already running (${workflowId}); joined it instead of starting another`
      : `promotion ${workflowId} started`;
    const base = { id: workflowId, promotionId: runId, workflowId, runId, joined, message };
    if (!wait) return reply.status(202).send(base);
    const finished = await waitForResult(handle, wait);
    const loc = await locate(deps, tenant, workflowId);
    const status = await statusOf(deps, tenant, loc);
    return reply.status(finished ? 200 : 202).send({ ...status, ...base, final: finished });
  });

  app.get('/promotions', async (req) => {
    requireScope(req, 'promotion:read');
    const tenant = tenantOf(req);
    const q = req.query as Record<string, string | undefined>;
    if (q.state && !(PROMOTION_STATES as readonly string[]).includes(q.state))
      throw badInput(`unknown state ${JSON.stringify(q.state)}: expected one of ${PROMOTION_STATES.join(', ')}`);
    if (q.artifact) validateDigest(q.artifact, 'artifact digest');
    if (q.env) validateEnv(q.env);
    const limit = Math.min(Math.max(Number(q.limit ?? 50) || 50, 1), 500);
    if (q.source === 'db') return { source: 'db', items: await listPromotionRows(ctx.db, { tenant, state: q.state, artifact: q.artifact, limit }) };
    const t = temporalOrThrow(deps);
    // Values are validated above (no quotes possible), so interpolation is safe.
    const parts = [`WorkflowType='promotion'`, `StellaTenant='${tenant}'`];
    if (q.state) parts.push(`StellaPromotionState='${q.state}'`);
    if (q.artifact) parts.push(`StellaArtifactDigest='${q.artifact}'`);
    if (q.env) parts.push(`StellaEnvironment='${q.env}'`);
    const query = parts.join(' AND ');
    const items: Record<string, unknown>[] = [];
    for await (const w of t.client.workflow.list({ query, pageSize: limit })) {
      items.push({
        id: w.workflowId,
        promotionId: w.runId,
        status: w.status.name,
        state: w.typedSearchAttributes.get(SA.state) ?? null,
        artifact: w.typedSearchAttributes.get(SA.artifact) ?? null,
        env: w.typedSearchAttributes.get(SA.env) ?? null,
        startTime: w.startTime.toISOString(),
        closeTime: w.closeTime?.toISOString() ?? null,
      });
      if (items.length >= limit) break;
    }
    return { source: 'temporal-visibility', query, items };
  });

  app.get('/promotions/:id', async (req) => {
    requireScope(req, 'promotion:read');
    const tenant = tenantOf(req);
    const { id } = req.params as { id: string };
    return statusOf(deps, tenant, await locate(deps, tenant, id));
  });

  app.get('/promotions/:id/evidence', async (req) => {
    requireScope(req, 'promotion:read');
    const tenant = tenantOf(req);
    const { id } = req.params as { id: string };
    const q = req.query as Record<string, string | undefined>;
    const s = await statusOf(deps, tenant, await locate(deps, tenant, id));
    const missing = missingOf(s);
    const base = { id: s.workflowId, promotionId: s.promotionId, artifact: s.artifactDigest, to: s.toEnv, state: s.state, deadline: s.deadline };
    if (q.missing === 'true' || q.missing === '') return { ...base, missing };
    return { ...base, gates: s.gates, missing };
  });

  app.post('/promotions/:id/retry', async (req, reply) => {
    const p = requireScope(req, 'promotion:write');
    const tenant = tenantOf(req);
    const { id } = req.params as { id: string };
    const loc = await locate(deps, tenant, id);
    if (!loc.running) {
      const s = await statusOf(deps, tenant, loc);
      throw conflict(`promotion ${loc.workflowId} is already ${s.state}${s.reason ? ` (${s.reason})` : ''}; start a new one with stella promotion start`);
    }
    await audit(ctx.db, { tenant, actor: p.sub, action: 'promotion.retry', target: loc.workflowId, details: { promotionId: loc.runId } });
    const mode = (req.query as Record<string, string | undefined>).mode;
    if (mode === 'signal') {
      await loc.handle.signal('retry', { by: p.sub });
      return reply.status(202).send({ id: loc.workflowId, promotionId: loc.runId, message: 'retry signalled; gates will be re-evaluated' });
    }
    try {
      // The update re-evaluates every gate and returns the new results.
      const s = await loc.handle.executeUpdate<PromotionStatus, [{ by: string }]>('retry', { args: [{ by: p.sub }] });
      return { ...s, id: loc.workflowId, missing: missingOf(s) };
    } catch (e) {
      if (e instanceof WorkflowUpdateFailedError) throw conflict(`retry refused: ${(e.cause as Error | undefined)?.message ?? e.message}`);
      throw e;
    }
  });

  for (const op of ['approve', 'abort'] as const) {
    app.post(`/promotions/:id/${op}`, async (req, reply) => {
      const p = requireScope(req, 'promotion:write');
      const tenant = tenantOf(req);
      const { id } = req.params as { id: string };
      const body = z.object({ reason: z.string().max(1000).optional(), comment: z.string().max(1000).optional() }).safeParse(req.body ?? {});
      if (!body.success) throw badInput(body.error.issues[0]!.message);
      const loc = await locate(deps, tenant, id);
      if (!loc.running) {
        const s = await statusOf(deps, tenant, loc);
        throw conflict(`promotion ${loc.workflowId} is already ${s.state}; nothing to ${op}`);
      }
      const reason = body.data.reason ?? body.data.comment;
      await audit(ctx.db, { tenant, actor: p.sub, action: `promotion.${op}`, target: loc.workflowId, reason, details: { promotionId: loc.runId } });
      await loc.handle.signal(op, op === 'approve' ? { by: p.sub, ...(reason ? { comment: reason } : {}) } : { by: p.sub, ...(reason ? { reason } : {}) });
      return reply.status(202).send({ id: loc.workflowId, promotionId: loc.runId, message: `${op} signalled by ${p.sub}` });
    });
  }

  // Policies -----------------------------------------------------------------------------
  app.get('/promotion-policies', async (req) => {
    requireScope(req, 'promotion:read');
    const tenant = tenantOf(req);
    const env = (req.query as Record<string, string | undefined>).env;
    if (env) return { promotion: await resolvePolicy(ctx.db, tenant, env) };
    return {
      promotion: {
        policies: await listPolicies(ctx.db, tenant),
        builtIn: { source: 'built-in', policyEnv: 'built-in', version: null, checksum: policyChecksum(DEFAULT_POLICY), policy: DEFAULT_POLICY },
      },
    };
  });

  app.put('/promotion-policies/:env', async (req) => {
    const p = requireScope(req, 'promotion:write');
    const tenant = tenantOf(req);
    const { env } = req.params as { env: string };
    const body = z
      .object({
        document: z
          .string()
          .min(1)
          .max(256 * 1024),
      })
      .safeParse(req.body ?? {});
    if (!body.success) throw badInput('body must be {"document": "<policy YAML or JSON text>"}');
    return setPolicy(ctx.db, { tenant, env, text: body.data.document, actor: p.sub });
  });
}

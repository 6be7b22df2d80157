import type { FastifyInstance } from 'fastify';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import { badInput, notFound } from '../../lib/errors';
import { validateDigest } from '../../core/evidence';
import { applyDeclaration, effectivePolicies, retentionPolicySection, setTiers, getTiers } from '../../core/retention/policy';
import { createHold, listHolds, getHold, releaseHold, holdsFor } from '../../core/retention/holds';
import { getRun, listRuns, runItems, openPromotionArtifactsFromDb } from '../../core/retention/purge';
import { archivePlan, streamArchive, deleteArchived, cleanupTemp } from '../../core/retention/archive';

const holdBody = z.object({
  scope: z.enum(['items', 'artifact', 'tenant', 'bundle_type', 'bundle-type']),
  values: z.array(z.string()).max(10_000).optional(),
  reason: z.string().min(1).max(2000),
  incidentTicket: z.string().max(200).optional().nullable(),
});
const purgeBody = z.object({
  dryRun: z.boolean().default(false),
  aggressive: z.boolean().default(false),
  reason: z.string().max(500).optional(),
  batchSize: z.number().int().min(1).max(5000).optional(),
});
const tiersBody = z.object({ hotDays: z.number().int().min(1).max(36500).optional(), coldDays: z.number().int().min(1).max(36500).optional() });
const deleteArchivedBody = z.object({ ids: z.array(z.string()).min(1).max(10_000), manifestSha256: z.string() });

const runIdOf = (kind: string) => `retention-${kind}-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;

export async function registerRetentionRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;

  // --- legal holds (replay runbook §2.3 / §3) ---
  app.post('/evidence/holds', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const b = holdBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(`${b.error.issues[0]!.path.join('.') || 'body'}: ${b.error.issues[0]!.message}`);
    const hold = await createHold(ctx, {
      tenant: tenantOf(req),
      scope: b.data.scope,
      values: b.data.values,
      reason: b.data.reason,
      incidentTicket: b.data.incidentTicket,
      actor: p.sub,
    });
    return reply.status(201).send(hold);
  });
  app.get('/evidence/holds', async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query as { all?: string; item?: string };
    if (q.item) return { holds: await holdsFor(ctx.db, tenantOf(req), validateDigest(q.item, 'evidence id')) };
    return { holds: await listHolds(ctx.db, tenantOf(req), { includeReleased: q.all === 'true' }) };
  });
  app.get('/evidence/holds/:id', async (req) => {
    requireScope(req, 'evidence:read');
    return getHold(ctx.db, tenantOf(req), (req.params as { id: string }).id);
  });
  app.delete('/evidence/holds/:id', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const reason = ((req.body as { reason?: string } | undefined)?.reason ?? (req.query as { reason?: string }).reason) || undefined;
    return releaseHold(ctx, { tenant: tenantOf(req), id: (req.params as { id: string }).id, actor: p.sub, reason });
  });

  // --- retention policies and tiers ---
  app.post('/evidence/retention/policies', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    if (!req.body || typeof req.body !== 'object') throw badInput('body must be a retention declaration or a DSSE envelope around one');
    const r = await applyDeclaration(ctx, { tenant: tenantOf(req), input: req.body, actor: p.sub });
    return reply.status(r.changed ? 201 : 200).send(r);
  });
  app.get('/evidence/retention/policies', async (req) => {
    requireScope(req, 'evidence:read');
    return retentionPolicySection(ctx.db, tenantOf(req));
  });
  app.get('/evidence/retention/tiers', async (req) => {
    requireScope(req, 'evidence:read');
    return getTiers(ctx.db, tenantOf(req));
  });
  app.put('/evidence/retention/tiers', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const b = tiersBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(`${b.error.issues[0]!.path.join('.')}: ${b.error.issues[0]!.message}`);
    return setTiers(ctx.db, tenantOf(req), b.data, p.sub);
  });

  // --- runs: purge (cleanup --apply-retention) and tier move, as durable workflows ---
  app.post('/evidence/retention/purge', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const b = purgeBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(b.error.issues[0]!.message);
    const t = temporalOrThrow(deps);
    const runId = runIdOf(b.data.dryRun ? 'dryrun' : 'purge');
    await t.client.workflow.start('retentionPurge', {
      taskQueue: t.taskQueue,
      workflowId: runId,
      args: [
        {
          tenant: tenantOf(req),
          dryRun: b.data.dryRun,
          aggressive: b.data.aggressive,
          actor: p.sub,
          reason: b.data.reason,
          batchSize: b.data.batchSize,
          runId,
        },
      ],
    });
    return reply.status(202).send({ runId, workflowId: runId });
  });
  app.post('/evidence/retention/tier-move', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const t = temporalOrThrow(deps);
    const runId = runIdOf('tier');
    await t.client.workflow.start('retentionTierMove', { taskQueue: t.taskQueue, workflowId: runId, args: [{ tenant: tenantOf(req), actor: p.sub, runId }] });
    return reply.status(202).send({ runId, workflowId: runId });
  });
  app.get('/evidence/retention/runs', async (req) => {
    requireScope(req, 'evidence:read');
    return { runs: await listRuns(ctx.db, tenantOf(req), Number((req.query as { limit?: string }).limit ?? 20)) };
  });
  app.get('/evidence/retention/runs/:runId', async (req) => {
    requireScope(req, 'evidence:read');
    const { runId } = req.params as { runId: string };
    const tenant = tenantOf(req);
    let status = 'UNKNOWN';
    let progress: unknown = null;
    if (deps.temporal) {
      try {
        const h = deps.temporal.client.workflow.getHandle(runId);
        const d = await h.describe();
        status = d.status.name;
        if (status === 'RUNNING') progress = await h.query('progress').catch(() => null);
      } catch (e) {
        if (!(e instanceof WorkflowNotFoundError)) throw e;
      }
    }
    const run = await getRun(ctx.db, runId, tenant).catch((e) => {
      if (status !== 'UNKNOWN' && (e as { code?: string }).code === 'NOT_FOUND') return null; // workflow started, row not yet written
      throw e;
    });
    if (!run && status === 'UNKNOWN') throw notFound(`retention run ${runId} not found`);
    return { runId, status, progress, run };
  });
  app.get('/evidence/retention/runs/:runId/items', async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query as { limit?: string; after?: string };
    const tenant = tenantOf(req);
    await getRun(ctx.db, (req.params as { runId: string }).runId, tenant);
    return runItems(ctx.db, (req.params as { runId: string }).runId, { tenant, limit: q.limit ? Number(q.limit) : undefined, after: q.after });
  });

  // --- cleanup --temp-only ---
  app.post('/evidence/cleanup/temp', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const b = z.object({ dryRun: z.boolean().default(false), olderThanMinutes: z.number().int().min(0).max(100_000).optional() }).safeParse(req.body ?? {});
    if (!b.success) throw badInput(b.error.issues[0]!.message);
    return cleanupTemp(ctx, {
      tenant: tenantOf(req),
      actor: p.sub,
      dryRun: b.data.dryRun,
      olderThanMs: b.data.olderThanMinutes === undefined ? undefined : b.data.olderThanMinutes * 60_000,
    });
  });

  // --- archive (streamed manifest tar) ---
  app.get('/evidence/archive', async (req, reply) => {
    const p = requireScope(req, 'evidence:read');
    const days = Number((req.query as { olderThanDays?: string }).olderThanDays);
    if (!Number.isInteger(days) || days < 0) throw badInput('olderThanDays must be a whole number of days');
    const tenant = tenantOf(req);
    // Replay bundles follow their own scope (runbook §2.4): without replay:read they are left out.
    const includeReplay = p.scopes.includes('replay:read') || p.scopes.includes('admin');
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
  app.get('/evidence/archive/plan', async (req) => {
    const p = requireScope(req, 'evidence:read');
    const days = Number((req.query as { olderThanDays?: string }).olderThanDays);
    return archivePlan(ctx, tenantOf(req), days, p.scopes.includes('replay:read') || p.scopes.includes('admin'));
  });
  app.post('/evidence/archive/delete', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const b = deleteArchivedBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(b.error.issues[0]!.message);
    b.data.ids.forEach((id) => validateDigest(id, 'evidence id'));
    validateDigest(b.data.manifestSha256, 'manifest sha256');
    const tenant = tenantOf(req);
    return deleteArchived(ctx, {
      tenant,
      ids: b.data.ids,
      actor: p.sub,
      manifestSha256: b.data.manifestSha256,
      protectedArtifacts: await openPromotionArtifactsFromDb(ctx.db, tenant),
    });
  });

  // Effective retention per bundle type (also used by `stella evidence policy show`).
  app.get('/evidence/retention/effective', async (req) => {
    requireScope(req, 'evidence:read');
    return effectivePolicies(ctx.db, tenantOf(req));
  });
}

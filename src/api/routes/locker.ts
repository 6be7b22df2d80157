import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import { badInput, notFound, StellaError } from '../../lib/errors';
import { validateDigest, validateKind } from '../../core/evidence';
import { lockerStatus } from '../../core/locker/status';
import { storeHealth, storageStats, storageCheck, probeStore, storageAnalyze, spoolWorkDir } from '../../core/locker/storage';
import { provenanceShow, evidenceChain } from '../../core/locker/graph';
import { indexStatus, indexRefresh, indexOptimize, indexLookup, latestOp } from '../../core/locker/index-ops';
import { markCorrupted, recover, retryStore } from '../../core/locker/repair';

const isAdmin = (scopes: string[]) => scopes.includes('admin');
const parse = <T>(schema: z.ZodType<T>, v: unknown): T => {
  const r = schema.safeParse(v ?? {});
  if (!r.success) throw badInput(r.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`)[0]!);
  return r.data;
};
const flag = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true');

/** Evidence Locker runbook operations (status, index, storage, repair, chain, bulk ingest). */
export async function registerLockerRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;
  const actorOf = (sub: string) => `api:${sub}`;

  app.get('/evidence/status', async (req) => {
    requireScope(req, 'evidence:read');
    return lockerStatus(ctx, tenantOf(req));
  });

  app.get('/evidence/store/health', async (req) => {
    requireScope(req, 'evidence:read');
    return storeHealth(ctx);
  });

  app.get('/evidence/:id/provenance', async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    return provenanceShow(ctx, tenantOf(req), validateDigest(id, 'evidence id'));
  });

  app.get('/evidence/chain', async (req) => {
    requireScope(req, 'evidence:read');
    const q = parse(z.object({ artifact: z.string({ error: 'artifact=<sha256:…> is required' }), tenant: z.string().optional() }), req.query);
    return evidenceChain(ctx, tenantOf(req), validateDigest(q.artifact, 'artifact digest'));
  });

  // ---- index -------------------------------------------------------------------------------
  app.get('/evidence/index/status', async (req) => {
    requireScope(req, 'evidence:read');
    const q = parse(z.object({ full: flag, sample: z.coerce.number().int().min(1).max(1_000_000).optional(), tenant: z.string().optional() }), req.query);
    return indexStatus(ctx, tenantOf(req), { full: q.full, sample: q.sample });
  });

  app.post('/evidence/index/refresh', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const b = parse(z.object({ dryRun: z.boolean().optional() }), req.body);
    return indexRefresh(ctx, tenantOf(req), actorOf(p.sub), { dryRun: b.dryRun });
  });

  app.post('/evidence/index/rebuild', async (req, reply) => {
    // Scans the whole (shared) store and writes index rows: administrators only.
    const p = requireScope(req, 'admin');
    const t = temporalOrThrow(deps);
    const opId = `index-rebuild-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;
    await t.client.workflow.start('evidenceIndexRebuild', {
      taskQueue: t.taskQueue,
      workflowId: opId,
      args: [{ opId, tenant: tenantOf(req), actor: actorOf(p.sub) }],
    });
    return reply.status(202).send({ opId, workflowId: opId });
  });

  app.get('/evidence/index/rebuild/:opId', async (req) => {
    requireScope(req, 'evidence:read');
    const { opId } = req.params as { opId: string };
    const t = temporalOrThrow(deps);
    let status: string;
    try {
      status = (await t.client.workflow.getHandle(opId).describe()).status.name;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw notFound(`index rebuild ${opId} not found`);
      throw e;
    }
    const r = await ctx.db.query('SELECT status, cursor, result, started_at, finished_at FROM locker_ops WHERE id=$1', [opId]);
    const row = r.rows[0];
    return {
      opId,
      workflowStatus: status,
      status: row?.status ?? 'starting',
      cursor: row?.cursor ?? null,
      result: row?.result ?? {},
      startedAt: row?.started_at ?? null,
      finishedAt: row?.finished_at ?? null,
    };
  });

  app.post('/evidence/index/optimize', async (req) => {
    const p = requireScope(req, 'admin');
    return indexOptimize(ctx, tenantOf(req), actorOf(p.sub));
  });

  app.get('/evidence/index/lookup/:id', async (req) => {
    const p = requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    // Admins see every tenant's row for the id; others only their own.
    return indexLookup(ctx, validateDigest(id, 'evidence id'), isAdmin(p.scopes) && !req.headers['x-stella-tenant'] ? '*' : [tenantOf(req)]);
  });

  // ---- storage -----------------------------------------------------------------------------
  app.get('/evidence/storage/stats', async (req) => {
    const p = requireScope(req, 'evidence:read');
    const q = parse(z.object({ allTenants: flag, tenant: z.string().optional() }), req.query);
    if (q.allTenants && !isAdmin(p.scopes)) throw new StellaError('FORBIDDEN', 'all-tenant statistics need the admin scope');
    return storageStats(ctx, tenantOf(req), q.allTenants);
  });

  app.get('/evidence/storage/check/:id', async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    return storageCheck(ctx, tenantOf(req), validateDigest(id, 'evidence id'));
  });

  app.post('/evidence/storage/test', async (req) => {
    requireScope(req, 'evidence:write');
    const probes = [await probeStore(ctx.blobs.primary, 'primary')];
    if (ctx.blobs.replica) probes.push(await probeStore(ctx.blobs.replica, 'replica'));
    return { ok: probes.every((x) => x.ok), stores: probes };
  });

  app.get('/evidence/storage/analyze', async (req) => {
    const p = requireScope(req, 'evidence:read');
    const q = parse(
      z.object({
        sort: z.enum(['size', 'age']).default('size'),
        limit: z.coerce.number().int().min(1).max(1000).default(20),
        allTenants: flag,
        tenant: z.string().optional(),
      }),
      req.query,
    );
    if (q.allTenants && !isAdmin(p.scopes)) throw new StellaError('FORBIDDEN', 'all-tenant analysis needs the admin scope');
    return storageAnalyze(ctx, tenantOf(req), { sort: q.sort, limit: q.limit, allTenants: q.allTenants });
  });

  // ---- repair ------------------------------------------------------------------------------
  app.post('/evidence/:id/mark-corrupted', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const { id } = req.params as { id: string };
    const b = parse(z.object({ reason: z.string({ error: 'reason is required' }) }), req.body);
    return markCorrupted(ctx, tenantOf(req), validateDigest(id, 'evidence id'), b.reason, actorOf(p.sub));
  });

  app.post('/evidence/:id/recover', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const { id } = req.params as { id: string };
    const b = parse(z.object({ source: z.string().default('replica') }), req.body);
    return recover(ctx, tenantOf(req), validateDigest(id, 'evidence id'), b.source, actorOf(p.sub));
  });

  app.post('/evidence/retry-store', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const b = parse(z.object({ artifact: z.string({ error: 'artifact is required' }) }), req.body);
    return retryStore(ctx, tenantOf(req), validateDigest(b.artifact, 'artifact digest'), actorOf(p.sub));
  });

  // ---- bulk ingest of a server-side directory (workflows/evidence.ts bulkIngest) -------------
  app.post('/evidence/ingest', async (req, reply) => {
    // Reads paths on the worker's machine: administrators only.
    const p = requireScope(req, 'admin');
    const b = parse(
      z.object({
        path: z.string().min(1),
        artifact: z.string(),
        kind: z.string(),
        mediaType: z.string().max(255).optional(),
        batchSize: z.number().int().min(1).max(5000).optional(),
      }),
      req.body,
    );
    if (!isAbsolute(b.path)) throw badInput(`path must be absolute (it is read by the worker): ${b.path}`);
    validateDigest(b.artifact, 'artifact digest');
    const kind = validateKind(b.kind);
    const st = await fsp.stat(b.path).catch(() => null);
    if (!st) throw badInput(`${b.path} does not exist on the stella server`);
    const isTar = st.isFile() && /\.(tar|tar\.gz|tgz|tar\.zst|tar\.zstd)$/i.test(b.path);
    if (!st.isDirectory() && !isTar) throw badInput(`${b.path} is neither a directory nor a .tar/.tar.gz/.tar.zst archive`);
    const t = temporalOrThrow(deps);
    const workflowId = `ingest-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;
    const base = { tenant: tenantOf(req), kind, artifact: b.artifact, mediaType: b.mediaType, actor: actorOf(p.sub) };
    if (isTar) {
      // Extracted by the worker with the safe extractor (src/archive) into its own spool directory.
      await t.client.workflow.start('evidenceIngestArchive', {
        taskQueue: t.taskQueue,
        workflowId,
        args: [{ ...base, archive: b.path, workDir: workflowId, workDirPath: spoolWorkDir(ctx.cfg.dataDir, workflowId) }, b.batchSize ?? 200],
      });
    } else {
      await t.client.workflow.start('bulkIngest', { taskQueue: t.taskQueue, workflowId, args: [{ ...base, dir: b.path }, b.batchSize ?? 200] });
    }
    return reply.status(202).send({ workflowId });
  });

  app.get('/evidence/ingest/:workflowId', async (req) => {
    requireScope(req, 'evidence:read');
    const { workflowId } = req.params as { workflowId: string };
    if (!/^ingest-[A-Za-z0-9-]+$/.test(workflowId)) throw badInput('not an ingest workflow id');
    const h = temporalOrThrow(deps).client.workflow.getHandle(workflowId);
    try {
      const d = await h.describe();
      const running = d.status.name === 'RUNNING';
      const progress = running ? await h.query('progress').catch(() => null) : null;
      let result: unknown = null;
      let error: string | null = null;
      if (d.status.name === 'COMPLETED') result = await h.result();
      else if (!running)
        error = await h.result().then(
          () => null,
          (e) => ((e as { cause?: Error }).cause ?? (e as Error)).message,
        );
      return { workflowId, status: d.status.name, progress, result, error };
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw notFound(`ingest ${workflowId} not found`);
      throw e;
    }
  });

  app.get('/evidence/ops/latest', async (req) => {
    requireScope(req, 'evidence:read');
    const q = parse(z.object({ op: z.enum(['index.refresh', 'index.rebuild', 'index.optimize', 'retry-store']), tenant: z.string().optional() }), req.query);
    return (await latestOp(ctx.db, tenantOf(req), q.op)) ?? {};
  });
}

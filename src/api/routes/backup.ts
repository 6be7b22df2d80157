import type { FastifyInstance } from 'fastify';
import { createReadStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { WorkflowNotFoundError, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import { badInput, conflict, notFound } from '../../lib/errors';
import { backupRoot, listBackups, newBackupId, validateBackupId, backupPath, readSummary } from '../../core/backup/backup';
import { checkS3Location, listS3Backups, readS3Summary, s3LocationOf } from '../../core/backup/s3';
import { provisionStorage } from '../../core/backup/provision';
import { exportEvidencePack } from '../../core/pack/export';
import { collectDiagnostics } from '../../core/diagnostics';
import { validateDigest } from '../../core/evidence';

const backupBody = z.object({
  type: z.literal('evidence-locker', { message: 'only --type evidence-locker is supported' }).default('evidence-locker'),
  outputDir: z.string().min(1).optional(),
});
const restoreBody = z
  .object({
    backupId: z.string().min(1).optional(),
    backupDir: z.string().min(1).optional(),
    target: z.string().min(1).optional(),
    toAnchor: z.string().min(1).optional(),
  })
  .refine((b) => b.backupId || b.toAnchor, { message: 'give --backup-id <id> and/or --to-anchor <anchor-id>' });
const provisionBody = z.object({ size: z.string().min(1), path: z.string().min(1).optional() });

async function workflowStatus(deps: ApiDeps, id: string, what: string) {
  const t = temporalOrThrow(deps);
  const h = t.client.workflow.getHandle(id);
  try {
    const d = await h.describe();
    const running = d.status.name === 'RUNNING';
    const progress = await h.query('progress').catch(() => null);
    let result: unknown = null;
    let error: string | null = null;
    if (d.status.name === 'COMPLETED') result = await h.result();
    else if (!running) {
      // The innermost cause is the activity's own one-line error (e.g. "database already holds …").
      error = await h.result().then(
        () => null,
        (e: Error) => {
          let c: Error = e;
          while (c.cause instanceof Error) c = c.cause;
          return c.message;
        },
      );
    }
    return { id, status: d.status.name, running, progress, result, error };
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(`${what} ${id} not found`);
    throw e;
  }
}

export async function registerBackupRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;

  app.post('/backups', async (req, reply) => {
    const p = requireScope(req, 'admin');
    const b = backupBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(b.error.issues[0]!.message);
    const t = temporalOrThrow(deps);
    const backupId = newBackupId();
    // s3://bucket/prefix: staged locally, then uploaded by the workflow.
    const s3 = s3LocationOf(ctx, b.data.outputDir);
    const dir = s3 ? s3.url : backupRoot(ctx, b.data.outputDir);
    if (s3) await checkS3Location(ctx, s3);
    else await fsp.mkdir(dir, { recursive: true });
    await t.client.workflow.start('backupEvidenceLocker', { taskQueue: t.taskQueue, workflowId: backupId, args: [{ backupId, dir, actor: p.sub }] });
    return reply.status(202).send({ backupId, workflowId: backupId, location: s3 ? `${s3.url}/${backupId}` : join(dir, backupId) });
  });

  app.get('/backups', async (req) => {
    requireScope(req, 'admin');
    const q = req.query as { type?: string; dir?: string };
    if (q.type && q.type !== 'evidence-locker') throw badInput('only --type evidence-locker is supported');
    const s3 = s3LocationOf(ctx, q.dir);
    if (s3) return { location: s3.url, backups: await listS3Backups(ctx, s3) };
    const root = backupRoot(ctx, q.dir);
    return { location: root, backups: await listBackups(root) };
  });

  app.get('/backups/:id', async (req) => {
    requireScope(req, 'admin');
    const { id } = req.params as { id: string };
    validateBackupId(id);
    const q = req.query as { dir?: string };
    try {
      return await workflowStatus(deps, id, 'backup');
    } catch (e) {
      // Made elsewhere (or Temporal history gone): the directory still tells.
      const s3 = s3LocationOf(ctx, q.dir);
      const s = s3 ? await readS3Summary(ctx, s3, id) : await readSummary(backupPath(backupRoot(ctx, q.dir), id));
      if (!s) throw e;
      return { id, status: s.status === 'complete' ? 'COMPLETED' : s.status.toUpperCase(), running: false, progress: null, result: s, error: null };
    }
  });

  app.post('/evidence/storage/provision', async (req) => {
    const p = requireScope(req, 'admin');
    const b = provisionBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(b.error.issues[0]!.message);
    return provisionStorage(ctx, { size: b.data.size, path: b.data.path, actor: p.sub });
  });

  app.post('/evidence/restore', async (req, reply) => {
    const p = requireScope(req, 'admin');
    const b = restoreBody.safeParse(req.body ?? {});
    if (!b.success) throw badInput(b.error.issues[0]!.message);
    if (b.data.backupId) validateBackupId(b.data.backupId);
    // An s3:// location (given or configured) goes to the workflow as is: it fetches the backup first.
    const s3 = b.data.backupId ? s3LocationOf(ctx, b.data.backupDir) : null;
    const backupDir = s3 ? s3.url : b.data.backupDir ? backupRoot(ctx, b.data.backupDir) : null;
    const t = temporalOrThrow(deps);
    const restoreId = `restore-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;
    try {
      await t.client.workflow.start('restoreEvidenceLocker', {
        taskQueue: t.taskQueue,
        workflowId: restoreId,
        args: [{ restoreId, actor: p.sub, backupId: b.data.backupId ?? null, backupDir, target: b.data.target ?? null, toAnchor: b.data.toAnchor ?? null }],
      });
    } catch (e) {
      if (e instanceof WorkflowExecutionAlreadyStartedError) throw conflict(`restore ${restoreId} already running`);
      throw e;
    }
    return reply.status(202).send({ restoreId, workflowId: restoreId });
  });

  app.get('/evidence/restore/:id', async (req) => {
    requireScope(req, 'admin');
    return workflowStatus(deps, (req.params as { id: string }).id, 'restore');
  });

  app.get('/evidence/export', async (req, reply) => {
    const p = requireScope(req, 'evidence:read');
    const q = req.query as { digest?: string; includeDeps?: string; format?: string };
    if (!q.digest) throw badInput('query parameter digest=<artifact digest> is required');
    validateDigest(q.digest, 'artifact digest');
    const ext = q.format === 'tar' ? 'tar' : q.format === 'zst' ? 'tar.zst' : 'tar.gz';
    const tmpDir = join(ctx.cfg.dataDir, 'tmp');
    await fsp.mkdir(tmpDir, { recursive: true });
    const file = join(tmpDir, `pack-${randomUUID()}.${ext}`);
    try {
      const r = await exportEvidencePack(ctx, { tenant: tenantOf(req), digest: q.digest, includeDeps: q.includeDeps === 'true', actor: p.sub }, file);
      const st = await fsp.stat(file);
      const stream = createReadStream(file);
      stream.on('close', () => void fsp.rm(file, { force: true }));
      return reply
        .header('content-type', ext === 'tar' ? 'application/x-tar' : ext === 'tar.gz' ? 'application/gzip' : 'application/zstd')
        .header('content-length', st.size)
        .header('x-stella-manifest-sha256', r.manifestSha256)
        .header('x-stella-pack-items', String(r.items))
        .header('x-stella-anchor', r.anchorId)
        .send(stream);
    } catch (e) {
      await fsp.rm(file, { force: true });
      throw e;
    }
  });

  app.get('/evidence/diagnostics', async (req) => {
    requireScope(req, 'admin');
    const q = req.query as { auditLimit?: string };
    return collectDiagnostics(ctx, tenantOf(req), { auditLimit: q.auditLimit ? Number(q.auditLimit) : undefined });
  });
}

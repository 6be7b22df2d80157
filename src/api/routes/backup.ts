/** HTTP routes of backup, restore, storage provisioning, evidence packs and diagnostics; contracts in src/contracts/backup.ts. */
import { randomUUID } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  BackupAccepted,
  BackupIdParams,
  BackupList,
  BackupStatus,
  BackupStatusQuery,
  CreateBackupBody,
  Diagnostics,
  DiagnosticsQuery,
  ExportPackQuery,
  ListBackupsQuery,
  ProvisionBody,
  ProvisionResult,
  RestoreAccepted,
  RestoreBody,
  RestoreIdParams,
  RestoreStatus,
} from '../../contracts/backup';
import { newBackupId, validateBackupId } from '../../core/backup/backup';
import { backupSummaryAt, listBackupsAt, prepareBackupRoot, restoreBackupDir } from '../../core/backup/locations';
import { provisionStorage } from '../../core/backup/provision';
import { exportEvidencePackFile } from '../../core/backup/pack/export';
import { collectDiagnostics } from '../../core/backup/diagnostics';
import { restoreWorkflowId } from '../../temporal/names';
import { backupRunState, restoreRunState, startBackup, startRestore } from '../../temporal/backup';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import type { App } from './evidence';

/** Backup and restore routes, registered in this order (the OpenAPI document lists them so). */
const ROUTES: readonly ((app: App, deps: ApiDeps) => void)[] = [backupRoutes, provisionRoute, restoreRoutes, exportRoute, diagnosticsRoute];

export async function registerBackupRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  for (const register of ROUTES) register(app, deps);
}

/** Backups: start (a workflow), list, status. */
function backupRoutes(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.post('/backups', { schema: { body: CreateBackupBody, response: { 202: BackupAccepted } } }, async (req, reply) => {
    const p = requireScope(req, 'admin');
    const t = temporalOrThrow(deps);
    const backupId = newBackupId();
    const { dir, location } = await prepareBackupRoot(ctx, req.body?.outputDir, backupId);
    const workflowId = await startBackup(t, { backupId, dir, actor: p.sub });
    return reply.status(202).send({ backupId, workflowId, location });
  });

  app.get('/backups', { schema: { querystring: ListBackupsQuery, response: { 200: BackupList } } }, async (req) => {
    requireScope(req, 'admin');
    return listBackupsAt(ctx, req.query.dir);
  });

  app.get('/backups/:id', { schema: { params: BackupIdParams, querystring: BackupStatusQuery, response: { 200: BackupStatus } } }, async (req) => {
    requireScope(req, 'admin');
    const id = validateBackupId(req.params.id);
    try {
      return await backupRunState(temporalOrThrow(deps).client, id);
    } catch (e) {
      // Made elsewhere (or Temporal history gone): the backup's location still tells.
      const s = await backupSummaryAt(ctx, req.query.dir, id);
      if (!s) throw e;
      return { id, status: s.status === 'complete' ? 'COMPLETED' : s.status.toUpperCase(), running: false, progress: null, result: s, error: null };
    }
  });
}

/** Storage provisioning. */
function provisionRoute(app: App, { ctx }: ApiDeps) {
  app.post('/evidence/storage/provision', { schema: { body: ProvisionBody, response: { 200: ProvisionResult } } }, async (req) => {
    const p = requireScope(req, 'admin');
    return provisionStorage(ctx, { size: req.body.size, path: req.body.path, actor: p.sub });
  });
}

/** Restore: start (a workflow), status. */
function restoreRoutes(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.post('/evidence/restore', { schema: { body: RestoreBody, response: { 202: RestoreAccepted } } }, async (req, reply) => {
    const p = requireScope(req, 'admin');
    const b = req.body;
    if (b.backupId) validateBackupId(b.backupId);
    const backupDir = restoreBackupDir(ctx, b.backupId, b.backupDir);
    const t = temporalOrThrow(deps);
    const restoreId = restoreWorkflowId(new Date(), randomUUID().slice(0, 8));
    const workflowId = await startRestore(t, {
      restoreId,
      actor: p.sub,
      backupId: b.backupId ?? null,
      backupDir,
      target: b.target ?? null,
      toAnchor: b.toAnchor ?? null,
    });
    return reply.status(202).send({ restoreId, workflowId });
  });

  app.get('/evidence/restore/:id', { schema: { params: RestoreIdParams, response: { 200: RestoreStatus } } }, async (req) => {
    requireScope(req, 'admin');
    return restoreRunState(temporalOrThrow(deps).client, req.params.id);
  });
}

/** Evidence pack export. */
function exportRoute(app: App, { ctx }: ApiDeps) {
  // Streams the pack's bytes: no response schema.
  app.get('/evidence/export', { schema: { querystring: ExportPackQuery } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:read');
    const q = req.query;
    const pack = await exportEvidencePackFile(
      ctx,
      { tenant: tenantOf(req), digest: q.digest, includeDeps: q.includeDeps ?? false, actor: p.sub },
      q.format ?? 'gz',
    );
    const stream = createReadStream(pack.file);
    stream.on('close', () => void fsp.rm(pack.file, { force: true }));
    return reply
      .header('content-type', pack.contentType)
      .header('content-length', pack.size)
      .header('x-stella-manifest-sha256', pack.manifestSha256)
      .header('x-stella-pack-items', String(pack.items))
      .header('x-stella-anchor', pack.anchorId)
      .send(stream);
  });
}

/** Diagnostics bundle. */
function diagnosticsRoute(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/diagnostics', { schema: { querystring: DiagnosticsQuery, response: { 200: Diagnostics } } }, async (req) => {
    requireScope(req, 'admin');
    return collectDiagnostics(ctx, tenantOf(req), { auditLimit: req.query.auditLimit });
  });
}

/** HTTP routes of scanning and attesting: parse (src/contracts) → call core → reply. */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { scanProgressQuery, scanThenAttest } from '../../../workflows/scan';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import type { App } from './evidence';
import { badInput, StellaError } from '../../lib/errors';
import { spoolUpload } from '../../core/evidence/spool';
import { listImages } from '../../core/scan/catalogue';
import { autoScanConfig, changeScannerSetting, scannerEngine } from '../../core/scan/config';
import { SCANNER } from '../../core/scan/engine';
import { handlePushEvent, handleWebhookEvents, type PushEvent } from '../../core/scan/events';
import { DISTRIBUTION_EVENTS_MEDIA_TYPE, webhookEntries } from '../../core/scan/webhooks';
import { PushAnswer, PushEventsBody } from '../../contracts/events';
import { importFeed, listFeeds } from '../../core/scan/feeds';
import { syncFeed } from '../../core/scan/feeds-sync';
import { FeedSynced } from '../../contracts/scan-feeds';
import { scanFeedRoutes } from './scan-feeds';
import { registerImageForScans } from '../../core/scan/register';
import { requestScan, type ScanWorkflows } from '../../core/scan/start';
import { listRunsWithStatus, scanQueue, scanStatus } from '../../core/scan/status';
import { ensureKnownType, importAttestation, importTrust, listAttestations, signerStatus, trustedRootPack, verifyAttestation } from '../../core/attest/attest';
import { attestSubject } from '../../core/attest/create';
import { exportAttestation } from '../../core/attest/external';
import { generateKey, rotateKey } from '../../core/keys';
import { exportRootPack } from '../../crypto/rootpack';
import {
  FeedImported,
  FeedList,
  ImageList,
  PushResult,
  RegisteredImage,
  RegisterImageBody,
  ScanBody,
  ScannerConfig,
  ScannerConfigSet,
  ScannerConfigSetBody,
  ScanQueue,
  ScanQueueQuery,
  ScanRunList,
  ScanRunsQuery,
  ScanStarted,
  ScanStatus,
  ScanStatusQuery,
} from '../../contracts/scan';
import {
  AttestationIdParams,
  AttestationList,
  AttestationsQuery,
  CreateAttestationBody,
  CreatedAttestation,
  ExportAttestationQuery,
  ExportedAttestation,
  ImportAttestationQuery,
  ImportedAttestation,
  SignerStatus,
  VerifiedAttestation,
} from '../../contracts/attest';
import { KeyBody, KeyList, KeyRecord, RootPack, RootPackImported, RootPackQuery, RotatedKeys } from '../../contracts/keys';

/** The scan workflow and its progress query, by reference. */
function scanWorkflows(deps: ApiDeps): ScanWorkflows | null {
  return deps.temporal ? { ...deps.temporal, workflow: scanThenAttest, progress: scanProgressQuery } : null;
}
function scanWorkflowsOrThrow(deps: ApiDeps): ScanWorkflows {
  return { ...temporalOrThrow(deps), workflow: scanThenAttest, progress: scanProgressQuery };
}

/** Raw bodies (bytes exactly as sent): the handler streams them to the spool itself. */
function rawScope(app: FastifyInstance, fn: (scope: FastifyInstance) => void) {
  return app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    fn(scope);
  });
}

/**
 * A raw body streamed to a spool file with a size cap (413 past it, refused up front when
 * Content-Length says so), then read back for `use`: never more than `limit` bytes of one body
 * in memory. `serial` bodies are read and used one at a time.
 */
async function withBody<T>(
  ctx: ApiDeps['ctx'],
  req: FastifyRequest,
  lim: { bytes: number; variable: string; serial?: boolean },
  use: (body: Buffer) => Promise<T>,
): Promise<T> {
  const tooLarge = () => new StellaError('TOO_LARGE', `request body exceeds the limit of ${lim.bytes} bytes (${lim.variable}); nothing stored`);
  if (Number(req.headers['content-length'] ?? 0) > lim.bytes) throw tooLarge();
  const spool = await spoolUpload(req.raw, join(ctx.cfg.dataDir, 'spool'), lim.bytes).catch((e) => {
    throw e instanceof StellaError && e.code === 'TOO_LARGE' ? tooLarge() : e;
  });
  try {
    if (spool.size === 0) throw badInput('empty request body');
    const run = async () => use(await readFile(spool.path));
    return await (lim.serial ? oneAtATime(run) : run());
  } finally {
    await rm(spool.path, { force: true });
  }
}

/** Feeds may be as large as an upload: parsed one at a time so concurrent imports don't multiply memory. */
let queue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
}

/** Scan and attest routes, registered in this order (the OpenAPI document lists them so). */
const ROUTES: readonly ((app: App, deps: ApiDeps) => unknown)[] = [
  scanRoutes,
  pushEventRoute,
  scannerConfigRoutes,
  imageRoutes,
  rawBodyRoutes,
  feedListRoute,
  scanFeedRoutes,
  attestationRoutes,
  keyRoutes,
];

export async function registerScanRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  for (const register of ROUTES) await register(app, deps);
}

/** Scans: request, status, runs, queue. */
function scanRoutes(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.post('/scans', { schema: { body: ScanBody, response: { 202: ScanStarted } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const b = req.body;
    const s = await requestScan(ctx, scanWorkflowsOrThrow(deps), tenantOf(req), { ...b, requestedBy: p.sub, trigger: 'manual' });
    const { image, ...rest } = s;
    return reply.status(202).send({ ...rest, imagePath: image.path });
  });

  app.get('/scans/status', { schema: { querystring: ScanStatusQuery, response: { 200: ScanStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return scanStatus(ctx, scanWorkflowsOrThrow(deps), tenantOf(req), req.query.workflowId, req.query.runId || undefined);
  });

  app.get('/scans', { schema: { querystring: ScanRunsQuery, response: { 200: ScanRunList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query;
    return { items: await listRunsWithStatus(ctx, scanWorkflows(deps), tenantOf(req), { artifact: q.artifact, limit: q.limit || 50 }) };
  });

  app.get('/scans/queue', { schema: { querystring: ScanQueueQuery, response: { 200: ScanQueue } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return scanQueue(ctx, scanWorkflowsOrThrow(deps), tenantOf(req), { artifact: req.query.artifact });
  });
}

/**
 * Registry push events: stella's body (one event; 409 when the image is not the pushed digest),
 * or a registry's webhook — distribution's notification envelope (its own media type) or
 * Harbor's payload — answered 202 with one result per event (a registry retries non-2xx answers).
 */
function pushEventRoute(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  return app.register(async (scope) => {
    scope.addContentTypeParser(DISTRIBUTION_EVENTS_MEDIA_TYPE, { parseAs: 'string' }, scope.getDefaultJsonParser('ignore', 'ignore'));
    const events = scope.withTypeProvider<ZodTypeProvider>();
    events.post('/events/push', { schema: { body: PushEventsBody, response: { 202: PushAnswer, 409: PushResult } } }, async (req, reply) => {
      const p = requireScope(req, 'evidence:write');
      const entries = webhookEntries(req.body);
      if (entries) return reply.status(202).send(await handleWebhookEvents(ctx, scanWorkflows(deps), tenantOf(req), p.sub, entries));
      const r = await handlePushEvent(ctx, scanWorkflows(deps), tenantOf(req), p.sub, req.body as PushEvent);
      return r.status === 'failed' ? reply.status(409).send({ ...r, code: 'CONFLICT', detail: r.reason }) : reply.status(202).send(r);
    });
  });
}

/** Scanner config. */
function scannerConfigRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/scanner/config', { schema: { response: { 200: ScannerConfig } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const tenant = tenantOf(req);
    return {
      auto_scan: await autoScanConfig(ctx, tenant),
      engine: await scannerEngine(ctx, tenant),
      scanner: SCANNER,
      feed: (await listFeeds(ctx, tenant))[0] ?? null,
    };
  });

  app.put('/scanner/config', { schema: { body: ScannerConfigSetBody, response: { 200: ScannerConfigSet } } }, async (req) => {
    const p = requireScope(req, 'admin');
    return changeScannerSetting(ctx, tenantOf(req), { ...req.body, actor: p.sub });
  });
}

/** Image catalogue. */
function imageRoutes(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.post('/images', { schema: { body: RegisterImageBody, response: { 200: RegisteredImage } } }, async (req) => {
    const p = requireScope(req, 'evidence:write');
    return registerImageForScans(ctx, scanWorkflows(deps), tenantOf(req), { ...req.body, actor: p.sub });
  });

  app.get('/images', { schema: { response: { 200: ImageList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await listImages(ctx, tenantOf(req)) };
  });
}

/** Feeds, attestation import, rootpack import: raw bodies, in an encapsulated scope. */
function rawBodyRoutes(app: App, { ctx }: ApiDeps) {
  const { maxUploadBytes, maxDocumentBytes } = ctx.cfg;
  const documentLimit = { bytes: maxDocumentBytes, variable: 'STELLA_MAX_DOCUMENT_BYTES' };
  return rawScope(app, (raw) => {
    const scope = raw.withTypeProvider<ZodTypeProvider>();
    scope.post('/feeds', { schema: { response: { 200: FeedImported } } }, async (req) => {
      const p = requireScope(req, 'evidence:write');
      const tenant = tenantOf(req);
      const source = (req.headers['x-stella-feed-source'] as string | undefined)?.slice(0, 1024);
      const lim = { bytes: maxUploadBytes, variable: 'STELLA_MAX_UPLOAD_BYTES', serial: true };
      return withBody(ctx, req, lim, (body) => importFeed(ctx, tenant, body, { actor: p.sub, ...(source ? { source } : {}) }));
    });
    scope.post('/feeds/sync', { schema: { response: { 200: FeedSynced } } }, async (req) => {
      const p = requireScope(req, 'evidence:write');
      const tenant = tenantOf(req);
      const lim = { bytes: maxUploadBytes, variable: 'STELLA_MAX_UPLOAD_BYTES', serial: true };
      return withBody(ctx, req, lim, (body) => syncFeed(ctx, tenant, body, p.sub));
    });
    scope.post('/attestations/import', { schema: { querystring: ImportAttestationQuery, response: { 200: ImportedAttestation } } }, async (req) => {
      const p = requireScope(req, 'evidence:write');
      const tenant = tenantOf(req);
      return withBody(ctx, req, documentLimit, (body) => importAttestation(ctx, tenant, body, { actor: p.sub, attests: req.query.attests }));
    });
    scope.post('/rootpack', { schema: { response: { 200: RootPackImported } } }, async (req) => {
      const p = requireScope(req, 'admin');
      const tenant = tenantOf(req);
      return withBody(ctx, req, documentLimit, (body) => importTrust(ctx, tenant, body, p.sub));
    });
  });
}

/** Imported feeds. */
function feedListRoute(app: App, { ctx }: ApiDeps) {
  app.get('/feeds', { schema: { response: { 200: FeedList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await listFeeds(ctx, tenantOf(req)) };
  });
}

/** Attestations: create, list, signer status, verify. */
function attestationRoutes(app: App, { ctx }: ApiDeps) {
  app.post('/attestations', { schema: { body: CreateAttestationBody, response: { 200: CreatedAttestation, 201: CreatedAttestation } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const r = await attestSubject(ctx, tenantOf(req), { subject: req.body.subject, type: ensureKnownType(req.body.type), actor: p.sub });
    return reply.status(r.reused ? 200 : 201).send(r);
  });

  app.get('/attestations', { schema: { querystring: AttestationsQuery, response: { 200: AttestationList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await listAttestations(ctx, tenantOf(req), req.query.subject) };
  });

  app.get('/attestations/status', { schema: { response: { 200: SignerStatus } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return signerStatus(ctx, tenantOf(req));
  });

  app.get('/attestations/:id', { schema: { params: AttestationIdParams, response: { 200: VerifiedAttestation } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return verifyAttestation(ctx, tenantOf(req), req.params.id);
  });

  app.get(
    '/attestations/:id/export',
    { schema: { params: AttestationIdParams, querystring: ExportAttestationQuery, response: { 200: ExportedAttestation } } },
    async (req) => {
      requireScope(req, 'evidence:read');
      return exportAttestation(ctx, tenantOf(req), req.params.id, req.query.format);
    },
  );
}

/** Keys and RootPack. */
function keyRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/keys', { schema: { response: { 200: KeyList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await ctx.keys.list() };
  });

  app.post('/keys', { schema: { body: KeyBody, response: { 201: KeyRecord } } }, async (req, reply) => {
    const p = requireScope(req, 'admin');
    return reply.status(201).send(await generateKey(ctx, tenantOf(req), { ...(req.body ?? {}), actor: p.sub }));
  });

  app.post('/keys/rotate', { schema: { body: KeyBody, response: { 200: RotatedKeys } } }, async (req) => {
    const p = requireScope(req, 'admin');
    return rotateKey(ctx, tenantOf(req), { ...(req.body ?? {}), actor: p.sub });
  });

  app.get('/rootpack', { schema: { querystring: RootPackQuery, response: { 200: RootPack } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return req.query.scope === 'own' ? exportRootPack(ctx.keys) : trustedRootPack(ctx);
  });
}

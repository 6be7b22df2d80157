/** Evidence item routes: upload (raw body), list, metadata, existence and retrieval. */
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  EvidenceIdParams,
  EvidenceItem,
  EvidenceList,
  Existence,
  ExistsQuery,
  IngestResult,
  ListEvidenceQuery,
  PutEvidenceQuery,
} from '../../contracts/evidence';
import { existence } from '../../core/evidence/locker/exists';
import { notFound } from '../../lib/errors';
import { ingestUpload, validateDigest } from '../../core/evidence';
import { type ApiDeps, requireScope, tenantOf } from '../deps';

/** Items up to this size are verified before the first byte is sent (clean error on rot). */
const VERIFY_BEFORE_SEND = 16 * 1024 * 1024;

export async function registerEvidenceRoutes(fastify: FastifyInstance, deps: ApiDeps) {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  // Uploads get the raw request stream whatever their content type (JSON evidence included):
  // an encapsulated scope without the default body parsers.
  await app.register(async (scope) => registerUpload(scope.withTypeProvider<ZodTypeProvider>(), deps));
  registerList(app, deps);
  registerMeta(app, deps);
  registerExists(app, deps);
  registerGet(app, deps);
}

/** The app as the zod type provider sees it. */
export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

function registerUpload(scope: App, deps: ApiDeps) {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
  scope.post('/evidence', { schema: { querystring: PutEvidenceQuery, response: { 200: IngestResult, 201: IngestResult } } }, async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const q = req.query;
    const r = await ingestUpload(deps.ctx, {
      tenant: tenantOf(req),
      body: req.raw,
      declaredDigest: req.headers['x-stella-digest'] as string | undefined,
      declaredLength: Number(req.headers['content-length'] ?? 0),
      contentType: req.headers['content-type'],
      kind: q.kind,
      subjects: q.artifact,
      parents: q.parent,
      relation: q.relation,
      predicateType: q.predicateType,
      producer: { type: 'api', sub: p.sub, ...(q.producer ? { name: q.producer } : {}) },
    });
    deps.metrics.ingestTotal.inc({ outcome: r.created ? 'created' : 'already-present' });
    return reply.status(r.created ? 201 : 200).send(r);
  });
}

function registerList(app: App, { ctx }: ApiDeps) {
  app.get('/evidence', { schema: { querystring: ListEvidenceQuery, response: { 200: EvidenceList } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query;
    return ctx.evidence.list({ tenant: tenantOf(req), artifact: q.artifact, kind: q.kind, limit: q.limit, cursor: q.cursor, includeAll: q.all === 'true' });
  });
}

function registerMeta(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/:id/meta', { schema: { params: EvidenceIdParams, response: { 200: EvidenceItem } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return ctx.evidence.get(tenantOf(req), validateDigest(req.params.id, 'evidence id'));
  });
}

function registerExists(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/:id/exists', { schema: { params: EvidenceIdParams, querystring: ExistsQuery, response: { 200: Existence } } }, async (req) => {
    requireScope(req, 'evidence:read');
    const e = await existence(ctx, tenantOf(req), validateDigest(req.params.id, 'evidence id'), req.query.deep === 'true');
    if (!e.indexed) throw notFound(`evidence ${e.id} not found`);
    return e;
  });
  // HEAD answers what GET would: 404 when not indexed, 422 when the index names a blob the store lacks.
  app.head('/evidence/:id', { schema: { params: EvidenceIdParams } }, async (req, reply) => {
    requireScope(req, 'evidence:read');
    const e = await existence(ctx, tenantOf(req), validateDigest(req.params.id, 'evidence id'), false);
    if (!e.indexed) return reply.status(404).send();
    const item = await ctx.evidence.get(tenantOf(req), e.id);
    if (e.blob !== 'present')
      return reply
        .header('x-stella-blob', e.blob ?? 'missing')
        .status(422)
        .send();
    return reply
      .header('x-stella-blob', e.blob)
      .header('content-type', item.mediaType)
      .header('content-length', item.size)
      .header('etag', `"${item.id}"`)
      .header('x-stella-kind', item.kind)
      .status(200)
      .send();
  });
}

/** Raw bytes: no response schema. */
function registerGet(app: App, deps: ApiDeps) {
  const { ctx } = deps;
  app.get('/evidence/:id', { schema: { params: EvidenceIdParams } }, async (req, reply) => {
    requireScope(req, 'evidence:read');
    const tenant = tenantOf(req);
    const id = validateDigest(req.params.id, 'evidence id');
    const end = deps.metrics.retrievalLatency.startTimer();
    const item = await ctx.evidence.head(tenant, id);
    if (item.kind === 'replay-bundle') requireScope(req, 'replay:read');
    reply.header('content-type', item.mediaType).header('etag', `"${item.id}"`).header('x-stella-kind', item.kind);
    if (item.size <= VERIFY_BEFORE_SEND) {
      const data = await ctx.evidence.read(tenant, id, item);
      end();
      return reply.send(data);
    }
    // Larger items stream from one read while hashing. A digest mismatch surfaces as a stream error
    // at the end: the response is aborted short of content-length, so no client takes it as complete.
    const { stream } = await ctx.evidence.open(tenant, id, item);
    stream.on('end', () => end());
    stream.on('error', (err) => {
      deps.metrics.retrievalIntegrityFailures.inc();
      req.log.error({ err, id, tenant }, 'evidence retrieval aborted: blob failed its integrity check');
    });
    return reply.header('content-length', item.size).send(stream);
  });
}

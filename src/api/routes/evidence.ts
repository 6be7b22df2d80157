import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireScope, tenantOf, type ApiDeps } from '../deps';
import { spoolUpload } from '../../core/spool';
import { validateDigest, validateKind } from '../../core/evidence';
import { badInput, StellaError } from '../../lib/errors';

const asArray = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : String(v).split(',').filter(Boolean));

const listQuery = z.object({
  artifact: z.string().optional(),
  kind: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  cursor: z.string().optional(),
  all: z.enum(['true', 'false']).optional(),
  tenant: z.string().optional(),
});

/** Items up to this size are verified before the first byte is sent (clean error on rot). */
const VERIFY_BEFORE_SEND = 16 * 1024 * 1024;

export async function registerEvidenceRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;

  // Uploads get the raw request stream whatever their content type (JSON evidence included):
  // an encapsulated scope without the default body parsers.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
    scope.post('/evidence', async (req, reply) => {
      const p = requireScope(req, 'evidence:write');
      const tenant = tenantOf(req);
      const q = req.query as Record<string, unknown>;
      const kind = validateKind(String(q.kind ?? ''));
      const subjects = asArray(q.artifact);
      if (!subjects.length) throw badInput('query parameter artifact=<sha256:…> is required');
      subjects.forEach((s) => validateDigest(s, 'artifact digest'));
      const parents = asArray(q.parent).map((id) => ({ id: validateDigest(id, 'parent id'), relation: String(q.relation ?? 'derived-from') }));
      const declared = (req.headers['x-stella-digest'] as string | undefined) ?? undefined;
      if (declared) validateDigest(declared, 'X-Stella-Digest');
      const declaredLen = Number(req.headers['content-length'] ?? 0);
      if (declaredLen > ctx.cfg.maxUploadBytes)
        throw new StellaError('TOO_LARGE', `upload of ${declaredLen} bytes exceeds the limit of ${ctx.cfg.maxUploadBytes} bytes; nothing stored`);
      const spool = await spoolUpload(req.raw, join(ctx.cfg.dataDir, 'spool'), ctx.cfg.maxUploadBytes);
      try {
        if (spool.size === 0) throw badInput('empty upload');
        if (declared && declared !== spool.digest)
          throw badInput(`digest mismatch: X-Stella-Digest says ${declared}, content hashes to ${spool.digest}; nothing stored`);
        const mediaType = String(req.headers['content-type'] ?? 'application/octet-stream')
          .split(';')[0]!
          .trim();
        const r = await ctx.evidence.ingest({
          tenant,
          filePath: spool.path,
          expectedDigest: spool.digest,
          kind,
          mediaType,
          subjects,
          parents,
          predicateType: q.predicateType ? String(q.predicateType) : undefined,
          producer: { type: 'api', sub: p.sub, ...(q.producer ? { name: String(q.producer) } : {}) },
        });
        deps.metrics.ingestTotal.inc({ outcome: r.created ? 'created' : 'already-present' });
        return reply.status(r.created ? 201 : 200).send(r);
      } finally {
        await fsp.rm(spool.path, { force: true });
      }
    });
  });

  app.get('/evidence', async (req) => {
    requireScope(req, 'evidence:read');
    const q = listQuery.safeParse(req.query);
    if (!q.success) throw badInput(q.error.issues[0]!.message);
    return ctx.evidence.list({
      tenant: tenantOf(req),
      artifact: q.data.artifact,
      kind: q.data.kind,
      limit: q.data.limit,
      cursor: q.data.cursor,
      includeAll: q.data.all === 'true',
    });
  });

  app.get('/evidence/:id/meta', async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    return ctx.evidence.get(tenantOf(req), validateDigest(id, 'evidence id'));
  });

  app.head('/evidence/:id', async (req, reply) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    const item = await ctx.evidence.find(tenantOf(req), validateDigest(id, 'evidence id'));
    if (!item || item.state === 'purged') return reply.status(404).send();
    return reply
      .header('content-type', item.mediaType)
      .header('content-length', item.size)
      .header('etag', `"${item.id}"`)
      .header('x-stella-kind', item.kind)
      .status(200)
      .send();
  });

  app.get('/evidence/:id', async (req, reply) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    const tenant = tenantOf(req);
    validateDigest(id, 'evidence id');
    const end = deps.metrics.retrievalLatency.startTimer();
    const item = await ctx.evidence.head(tenant, id);
    if (item.kind === 'replay-bundle') requireScope(req, 'replay:read');
    reply.header('content-type', item.mediaType).header('etag', `"${item.id}"`).header('x-stella-kind', item.kind);
    if (item.size <= VERIFY_BEFORE_SEND) {
      const data = await ctx.evidence.read(tenant, id, item);
      end();
      return reply.send(data);
    }
    const { stream } = await ctx.evidence.open(tenant, id, item);
    // A digest mismatch surfaces as a stream error: the response is aborted, never completed.
    stream.on('end', () => end());
    return reply.send(stream);
  });
}

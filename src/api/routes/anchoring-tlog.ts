/** Anchors in standard formats (issue 18): C2SP checkpoint and tlog-tiles, consistency proofs, witness cosignatures. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AnchorCheckpoint, AnchorIdParams, ConsistencyQuery, ConsistencyResponse, CosignatureBody, CosignatureResponse } from '../../contracts/anchoring';
import { addCosignatures, anchorCheckpoint, anchorConsistency, latestCheckpoint, readTile } from '../../core/anchoring';
import { parseTilePath } from '../../merkle';
import { badInput, notFound } from '../../lib/errors';
import { requireScope, type ApiDeps } from '../deps';
import type { App } from './evidence';

// Full tiles never change once served (tlog-tiles); partial tiles and the checkpoint move on.
const IMMUTABLE = 'private, max-age=31536000, immutable';
const SHORT = 'private, max-age=5';

/**
 * The global log in the C2SP tlog-tiles layout under /tlog. Hash tiles and the checkpoint are as
 * global as the anchors (sizes and hashes only); entry tiles carry every tenant's leaves (ids,
 * tenant names), so they are for administrators: a tenant gets its own leaf with `evidence proof`.
 */
export function tlogRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/tlog/checkpoint', {}, async (req, reply) => {
    requireScope(req, 'evidence:read');
    const cp = await latestCheckpoint(ctx);
    if (!cp) throw notFound('no checkpoint yet (stella evidence anchor create)');
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(cp.note);
  });

  // tile/<L>/<N>[.p/<W>]: N is split into xNNN/ groups, so one route per depth keeps every path
  // segment a declared parameter (and the OpenAPI document lists them).
  for (let depth = 1; depth <= TILE_MAX_SEGMENTS; depth++) {
    const names = Array.from({ length: depth }, (_, i) => `s${i + 1}`);
    const params = z.object(Object.fromEntries(['level', ...names].map((n) => [n, z.string().max(8)])));
    app.get(`/tlog/tile/:level/${names.map((n) => `:${n}`).join('/')}`, { schema: { params } }, async (req, reply) => {
      const p = req.params as Record<string, string>;
      return sendTile(ctx, req, reply, [p.level, ...names.map((n) => p[n])].join('/'));
    });
  }
}

/** Level (or "entries"), up to six index groups and a partial width. */
const TILE_MAX_SEGMENTS = 7;

async function sendTile(ctx: ApiDeps['ctx'], req: FastifyRequest, reply: FastifyReply, path: string) {
  requireScope(req, 'evidence:read');
  let t: ReturnType<typeof parseTilePath>;
  try {
    t = parseTilePath(path);
  } catch (e) {
    throw badInput(`tile path: ${(e as Error).message}`);
  }
  if (t.kind === 'entries') requireScope(req, 'admin');
  const body = await readTile(ctx, t);
  return reply
    .type('application/octet-stream')
    .header('cache-control', t.width === 256 ? IMMUTABLE : SHORT)
    .send(body);
}

/** Consistency between two anchors; an anchor's checkpoint; witness cosignatures. */
export function anchorStandardsRoutes(app: App, { ctx }: ApiDeps) {
  app.get('/evidence/anchors/consistency', { schema: { querystring: ConsistencyQuery, response: { 200: ConsistencyResponse } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return anchorConsistency(ctx, req.query.from, req.query.to);
  });

  app.get('/evidence/anchors/:id/checkpoint', { schema: { params: AnchorIdParams, response: { 200: AnchorCheckpoint } } }, async (req) => {
    requireScope(req, 'evidence:read');
    return anchorCheckpoint(ctx, req.params.id);
  });

  app.post(
    '/evidence/anchors/:id/cosignatures',
    { schema: { params: AnchorIdParams, body: CosignatureBody, response: { 201: CosignatureResponse } } },
    async (req, reply) => {
      const p = requireScope(req, 'evidence:write');
      return reply.status(201).send(await addCosignatures(ctx, req.params.id, req.body.cosignature, p.sub));
    },
  );
}

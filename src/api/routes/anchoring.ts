import { importRootPack, loadRootPack } from '../../crypto/rootpack';
import { trustedRootPack } from '../../core/attest/attest';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import { badInput, notFound } from '../../lib/errors';
import {
  anchorById,
  anchorTrust,
  exportAnchorById,
  inclusionProofFor,
  latestAnchor,
  listAnchors,
  newChain,
  recoverAnchor,
  verifyAnchors,
  toChainView,
  type AnchorView,
} from '../../core/anchoring';
import { anchorHash, verifyAnchor } from '../../merkle';

const createBody = z.object({ reason: z.string().min(1).max(500).optional(), force: z.boolean().optional() }).strict();
const verifyBody = z.object({ scope: z.enum(['latest', 'all']).default('latest'), verbose: z.boolean().optional(), rootPack: z.unknown().optional() }).strict();
const newChainBody = z.object({ reason: z.string().trim().min(1, 'reason is required').max(500) }).strict();
const recoverBody = z.object({ source: z.string().min(1).max(4096).default('backup') }).strict();
const listQuery = z.object({
  before: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  chain: z.string().optional(),
  links: z.enum(['true', 'false']).optional(),
  tenant: z.string().optional(),
});

function parse<T>(schema: z.ZodType<T>, v: unknown): T {
  const r = schema.safeParse(v ?? {});
  if (!r.success) throw badInput(r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`)[0]!);
  return r.data;
}

export async function registerAnchoringRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;
  const byIdOrLatest = async (id: string, jws = false): Promise<AnchorView> => {
    if (id === 'latest') {
      const a = await latestAnchor(ctx, { jws });
      if (!a) throw notFound('no anchor yet (stella evidence anchor create)');
      return a;
    }
    return anchorById(ctx, id, { jws });
  };

  // SP-003 step 1: on-demand anchoring runs the same workflow as the schedule.
  app.post('/evidence/anchors', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const b = parse(createBody, req.body);
    const t = temporalOrThrow(deps);
    const workflowId = `stella-merkle-anchor-manual-${new Date().toISOString().replace(/[:.]/g, '')}-${randomUUID().slice(0, 8)}`;
    const result = await t.client.workflow.execute('anchorEvidence', {
      taskQueue: t.taskQueue,
      workflowId,
      args: [{ reason: b.reason ?? 'manual', force: b.force ?? false, actor: p.sub }],
    });
    return reply.status(result.status === 'created' ? 201 : 200).send({ workflowId, ...result });
  });

  app.get('/evidence/anchors', async (req) => {
    requireScope(req, 'evidence:read');
    const q = parse(listQuery, req.query);
    return listAnchors(ctx, { before: q.before, limit: q.limit, chainId: q.chain, showLinks: q.links === 'true' });
  });

  app.post('/evidence/anchors/verify', async (req) => {
    requireScope(req, 'evidence:read');
    const b = parse(verifyBody, req.body);
    // An operator-supplied RootPack (e.g. from an offline kit) is trusted in addition to ours.
    const extra =
      b.rootPack === undefined
        ? undefined
        : await loadRootPack(b.rootPack).catch((e: Error) => {
            throw badInput(`rootPack: ${e.message}`);
          });
    const r = await verifyAnchors(ctx, { scope: b.scope, ...(extra ? { rootPack: (await importRootPack(await trustedRootPack(ctx), extra)).pack } : {}) });
    return b.verbose ? r : { ...r, steps: undefined };
  });

  app.post('/evidence/anchors/new-chain', async (req, reply) => {
    const p = requireScope(req, 'admin');
    const b = parse(newChainBody, req.body);
    const r = await newChain(ctx, { reason: b.reason, actor: p.sub });
    return reply.status(201).send(r);
  });

  app.get('/evidence/anchors/:id', async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    const a = await byIdOrLatest(id, true);
    const [chain, prev, next] = await Promise.all([
      ctx.db.query('SELECT * FROM anchor_chains WHERE id = $1', [a.chainId]),
      ctx.db.query('SELECT id, jws FROM anchors WHERE chain_id = $1 AND seq = $2', [a.chainId, a.seq - 1]),
      ctx.db.query('SELECT id FROM anchors WHERE chain_id = $1 AND seq = $2', [a.chainId, a.seq + 1]),
    ]);
    const trust = await anchorTrust(ctx.keys, await trustedRootPack(ctx));
    let signature: { ok: boolean; detail: string };
    try {
      const v = await verifyAnchor(a.jws!, trust.resolver);
      const wp = trust.windowProblem(v.payload.kid, new Date(v.payload.createdAt));
      signature = wp ? { ok: false, detail: wp } : { ok: true, detail: `${v.alg} signature by ${v.payload.kid} valid` };
    } catch (e) {
      signature = { ok: false, detail: (e as Error).message };
    }
    const prevRow = prev.rows[0];
    const link =
      a.seq === 0
        ? { ok: a.prevAnchorHash === null, detail: 'genesis anchor of its chain' }
        : prevRow
          ? {
              ok: anchorHash(prevRow.jws) === a.prevAnchorHash,
              detail:
                anchorHash(prevRow.jws) === a.prevAnchorHash ? `links to seq ${a.seq - 1} (${prevRow.id})` : `prev_anchor_hash does not match seq ${a.seq - 1}`,
            }
          : { ok: false, detail: `seq ${a.seq - 1} is missing` };
    return {
      anchor: a,
      jwsHashMatchesId: anchorHash(a.jws!) === a.id,
      signature,
      link,
      chain: chain.rowCount ? toChainView(chain.rows[0]) : null,
      previousId: prevRow?.id ?? null,
      nextId: next.rows[0]?.id ?? null,
    };
  });

  app.get('/evidence/anchors/:id/export', async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    return exportAnchorById(ctx, id === 'latest' ? 'latest' : (await anchorById(ctx, id)).id);
  });

  app.post('/evidence/anchors/:id/recover', async (req) => {
    const p = requireScope(req, 'admin');
    const { id } = req.params as { id: string };
    const b = parse(recoverBody, req.body);
    return recoverAnchor(ctx, { id, source: b.source, actor: p.sub });
  });

  app.get('/evidence/:id/proof', async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    const q = req.query as { anchor?: string };
    return inclusionProofFor(ctx, tenantOf(req), id, q.anchor || undefined);
  });
}

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireScope, tenantOf, temporalOrThrow, type ApiDeps } from '../deps';
import { extraRoutes } from '../server';
import { getRun, listRuns, loadRunFiles, verifyRun, recordVerification } from '../../core/replay/runs';
import { exportRootPack } from '../../crypto/rootpack';
import { badInput, notFound } from '../../core/errors';
import { audit } from '../../core/audit';

const syncBody = z.object({
  scanId: z.string().min(1),
  ok: z.boolean(),
  problems: z.array(z.object({ code: z.string(), detail: z.string(), severity: z.enum(['error', 'warning']) })),
  verifiedAt: z.string().optional(),
}).loose();

/** Replay bundles are served only to tokens with replay:read for the right tenant (runbook §2.4). */
export async function registerReplayRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;

  app.get('/replay/runs', async (req) => {
    requireScope(req, 'replay:read');
    const q = req.query as { artifact?: string; limit?: string };
    return { runs: await listRuns(ctx, { tenant: tenantOf(req), artifact: q.artifact, limit: q.limit ? Number(q.limit) : undefined }) };
  });

  app.get('/replay/runs/:scanId', async (req) => {
    requireScope(req, 'replay:read');
    return getRun(ctx, tenantOf(req), (req.params as { scanId: string }).scanId);
  });

  app.post('/replay/runs/:scanId/verify', async (req) => {
    requireScope(req, 'replay:read');
    const strict = (req.body as { strict?: boolean } | undefined)?.strict ?? true;
    const tenant = tenantOf(req);
    const scanId = (req.params as { scanId: string }).scanId;
    const r = await verifyRun(ctx, tenant, scanId, 'on-demand', strict);
    const ledger = (req.query as { ledger?: string }).ledger ? await ledgerCheck(deps, tenant, scanId) : undefined;
    return { ...r, ...(ledger ? { ledger } : {}) };
  });

  app.get('/replay/runs/:scanId/ledger', async (req) => {
    requireScope(req, 'replay:read');
    return ledgerCheck(deps, tenantOf(req), (req.params as { scanId: string }).scanId);
  });

  app.get('/replay/runs/:scanId/explain', async (req) => {
    requireScope(req, 'replay:read');
    const tenant = tenantOf(req);
    const scanId = (req.params as { scanId: string }).scanId;
    const r = await ctx.db.query('SELECT last_result, last_codes, last_explain, last_verified_at FROM replay_runs WHERE tenant_id=$1 AND scan_id=$2', [tenant, scanId]);
    if (!r.rowCount) throw notFound(`replay run ${scanId} not found`);
    return r.rows[0];
  });

  app.get('/replay/runs/:scanId/kit', async (req) => {
    requireScope(req, 'replay:read');
    const run = await getRun(ctx, tenantOf(req), (req.params as { scanId: string }).scanId);
    const f = await loadRunFiles(ctx, run);
    if (!f.manifest || !f.envelope || !f.input || !f.output) throw notFound(`replay files for ${run.scanId} are missing from the store`);
    return { manifest: f.manifest, envelope: f.envelope, input: f.input.toString('base64'), output: f.output.toString('base64'), rootpack: await exportRootPack(ctx.keys) };
  });

  app.post('/replay/sync', async (req) => {
    const p = requireScope(req, 'replay:read');
    const b = syncBody.safeParse(req.body);
    if (!b.success) throw badInput(`not an offline verification log: ${b.error.issues[0]!.message}`);
    const tenant = tenantOf(req);
    await getRun(ctx, tenant, b.data.scanId);
    await recordVerification(ctx, tenant, b.data.scanId, 'offline-sync', { ok: b.data.ok, problems: b.data.problems as never });
    await audit(ctx.db, { tenant, actor: p.sub, action: 'replay.offline.sync', target: b.data.scanId, details: { ok: b.data.ok, verifiedAt: b.data.verifiedAt } });
    return { scanId: b.data.scanId, result: b.data.ok ? 'passed' : 'failed', codes: b.data.problems.filter((x) => x.severity === 'error').map((x) => x.code) };
  });

  app.post('/replay/nightly', async (req, reply) => {
    requireScope(req, 'admin');
    const t = temporalOrThrow(deps);
    const id = `replay-nightly-manual-${Date.now()}`;
    await t.client.workflow.start('replayVerifyNightly', { taskQueue: t.taskQueue, workflowId: id, args: [{ latestN: ctx.cfg.schedules.replayLatestN }] });
    return reply.status(202).send({ workflowId: id });
  });
}

/** `--ledger`: the manifest's evidence item is in the Merkle log and covered by an anchor. */
async function ledgerCheck(deps: ApiDeps, tenant: string, scanId: string) {
  const run = await getRun(deps.ctx, tenant, scanId);
  const log = await deps.ctx.db.query('SELECT seq FROM evidence_log WHERE tenant_id=$1 AND item_id=$2', [tenant, run.manifestDigest]);
  if (!log.rowCount) return { ok: false, reason: 'manifest is not in the evidence log' };
  const seq = Number(log.rows[0].seq);
  const hasAnchors = (await deps.ctx.db.query(`SELECT to_regclass('anchors') AS t`)).rows[0].t;
  if (!hasAnchors) return { ok: false, seq, reason: 'no anchors table (anchoring not set up)' };
  const a = await deps.ctx.db.query(`SELECT id, log_size FROM anchors WHERE log_size > $1 ORDER BY log_size ASC LIMIT 1`, [seq]);
  if (!a.rowCount) return { ok: false, seq, reason: 'no anchor covers the manifest yet (stella evidence anchor create)' };
  try {
    const anchoringModule = '../../core/anchoring/index'; // optional module: resolved at run time
    const mod = (await import(/* @vite-ignore */ anchoringModule)) as unknown as Record<string, (...a: unknown[]) => Promise<{ ok?: boolean; verified?: boolean }>>;
    const prove = mod.verifyItemInclusion ?? mod.proveAndVerify;
    if (prove) {
      const r = await prove(deps.ctx, tenant, run.manifestDigest, a.rows[0].id);
      return { ok: r.ok ?? r.verified ?? false, seq, anchor: a.rows[0].id, proof: r };
    }
  } catch {
    /* anchoring module without a proof helper */
  }
  return { ok: true, seq, anchor: a.rows[0].id, note: 'covered by anchor (inclusion proof: stella evidence proof ' + run.manifestDigest + ')' };
}

extraRoutes.push(registerReplayRoutes);
import '../../core/replay/schedule';

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { requireScope, tenantOf, temporalOrThrow, type ApiDeps } from '../deps';
import { getRun, listRuns, loadRunFiles, verifyRun, recordVerification } from '../../core/replay/runs';
import { exportRootPack } from '../../crypto/rootpack';
import { badInput, notFound } from '../../lib/errors';
import { audit } from '../../core/audit';
import { inclusionProofFor, verifyOffline } from '../../core/anchoring';
import { decodeAnchorUnverified } from '../../merkle';
import { trustedRootPack } from '../../core/attest/attest';

const syncBody = z
  .object({
    scanId: z.string().min(1),
    ok: z.boolean(),
    problems: z.array(z.object({ code: z.string(), detail: z.string(), severity: z.enum(['error', 'warning']) })),
    verifiedAt: z.string().optional(),
  })
  .loose();

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
    const r = await ctx.db.query('SELECT last_result, last_codes, last_explain, last_verified_at FROM replay_runs WHERE tenant_id=$1 AND scan_id=$2', [
      tenant,
      scanId,
    ]);
    if (!r.rowCount) throw notFound(`replay run ${scanId} not found`);
    return r.rows[0];
  });

  app.get('/replay/runs/:scanId/kit', async (req) => {
    requireScope(req, 'replay:read');
    const run = await getRun(ctx, tenantOf(req), (req.params as { scanId: string }).scanId);
    const f = await loadRunFiles(ctx, run);
    if (!f.manifest || !f.envelope || !f.input || !f.output) throw notFound(`replay files for ${run.scanId} are missing from the store`);
    return {
      manifest: f.manifest,
      envelope: f.envelope,
      input: f.input.toString('base64'),
      output: f.output.toString('base64'),
      rootpack: await exportRootPack(ctx.keys),
    };
  });

  app.post('/replay/sync', async (req) => {
    const p = requireScope(req, 'replay:read');
    const b = syncBody.safeParse(req.body);
    if (!b.success) throw badInput(`not an offline verification log: ${b.error.issues[0]!.message}`);
    const tenant = tenantOf(req);
    await getRun(ctx, tenant, b.data.scanId);
    await recordVerification(ctx, tenant, b.data.scanId, 'offline-sync', { ok: b.data.ok, problems: b.data.problems as never });
    await audit(ctx.db, {
      tenant,
      actor: p.sub,
      action: 'replay.offline.sync',
      target: b.data.scanId,
      details: { ok: b.data.ok, verifiedAt: b.data.verifiedAt },
    });
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

/**
 * `--ledger`: the manifest's evidence item has an inclusion proof in a signed anchor of the
 * Merkle log, and that proof verifies the way an offline verifier would check it.
 */
async function ledgerCheck(deps: ApiDeps, tenant: string, scanId: string) {
  const run = await getRun(deps.ctx, tenant, scanId);
  try {
    const proof = await inclusionProofFor(deps.ctx, tenant, run.manifestDigest);
    // Pin the anchor's signing key to one this locker trusts (not just the key embedded in the proof).
    const kid = decodeAnchorUnverified(proof.anchor)?.kid;
    const trusted = (await trustedRootPack(deps.ctx)).keys.find((k) => k.kid === kid);
    if (!trusted) return { ok: false, manifest: run.manifestDigest, reason: `anchor signed by ${kid ?? 'an unknown key'}, which is not in the RootPack` };
    const v = await verifyOffline(proof, { pinnedJwk: trusted.publicJwk, evidenceId: run.manifestDigest });
    return {
      ok: v.ok,
      manifest: run.manifestDigest,
      anchor: v.anchorHash ?? null,
      leafIndex: v.leafIndex ?? null,
      treeSize: v.payload?.logSize ?? null,
      signer: kid,
      detail: v.detail,
    };
  } catch (e) {
    return { ok: false, manifest: run.manifestDigest, reason: (e as Error).message };
  }
}

import { imageRefFor } from '../../core/scan/catalogue';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { WorkflowNotFoundError } from '@temporalio/client';
import { requireScope, temporalOrThrow, tenantOf, type ApiDeps } from '../deps';
import { audit } from '../../core/audit';
import { badInput, notFound, StellaError } from '../../lib/errors';
import { validateDigest } from '../../core/evidence';
import { SIGNING_PURPOSE } from '../../core/keys';
import { listImages, registerImage } from '../../core/scan/catalogue';
import { importFeed, listFeeds } from '../../core/scan/feeds';
import { autoScanConfig, listScanRuns, runRow, scannerEngine, setScannerConfig, type ScanRun } from '../../core/scan/runs';
import { SCAN_SA, scanWorkflowId, startScan } from '../../core/scan/start';
import { SCANNER } from '../../core/scan/engine';
import {
  ATTEST_TYPES,
  ensureKnownType,
  importAttestation,
  importTrust,
  listAttestations,
  provenanceStatement,
  sbomStatement,
  signAndStore,
  signerStatus,
  trustedRootPack,
  verifyAttestation,
  vulnStatement,
  type ScanFacts,
} from '../../core/attest/attest';
import { exportRootPack } from '../../crypto/rootpack';
import type { SigAlg } from '../../crypto/dsse';

const parse = <T>(schema: z.ZodType<T>, v: unknown): T => {
  const r = schema.safeParse(v ?? {});
  if (!r.success) throw badInput(r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
};

const scanBody = z.object({ image: z.string().min(1).max(4096), sbomOnly: z.boolean().optional(), force: z.boolean().optional() });
const pushBody = z.object({
  repository: z.string().max(512).optional(),
  tag: z.string().max(256).optional(),
  digest: z.string().optional(),
  image: z.string().max(4096).optional(),
});

const own = (tenant: string, workflowId: string) => {
  if (!workflowId.startsWith(`scan-${tenant}-`)) throw notFound(`scan ${workflowId} not found`);
};

async function scanStatus(deps: ApiDeps, tenant: string, workflowId: string, runId?: string) {
  own(tenant, workflowId);
  const t = temporalOrThrow(deps);
  const h = t.client.workflow.getHandle(workflowId, runId);
  let d;
  try {
    d = await h.describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw notFound(`scan ${workflowId} not found`);
    throw e;
  }
  const status = d.status.name;
  let progress: unknown = null;
  let error: string | null = null;
  let errorType: string | null = null;
  if (status === 'RUNNING') progress = await h.query('progress').catch(() => null);
  else if (status === 'COMPLETED') progress = await h.result();
  else {
    try {
      await h.result();
    } catch (e) {
      const c = (e as { cause?: { message?: string; type?: string; details?: unknown[] } }).cause;
      error = c?.message ?? (e as Error).message;
      errorType = c?.type ?? null;
      progress = (c?.details?.[0] as unknown) ?? null;
    }
  }
  const run = await deps.ctx.db.query('SELECT * FROM scan_runs WHERE tenant_id=$1 AND scan_id=$2', [tenant, d.runId]);
  return { workflowId, runId: d.runId, status, progress, error, errorType, run: run.rowCount ? runRow(run.rows[0]) : null };
}

/** Raw body (bytes exactly as sent) for uploads that are stored or hashed. */
function rawScope(app: FastifyInstance, limit: number, fn: (scope: FastifyInstance) => void) {
  return app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));
    fn(scope);
  });
}

const bodyBuffer = (req: FastifyRequest): Buffer => {
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw badInput('empty request body');
  return req.body;
};

export async function registerScanRoutes(app: FastifyInstance, deps: ApiDeps) {
  const { ctx } = deps;

  // ---- scans ------------------------------------------------------------------------
  app.post('/scans', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const tenant = tenantOf(req);
    const b = parse(scanBody, req.body);
    const t = temporalOrThrow(deps);
    const s = await startScan(ctx, t, tenant, { image: b.image, sbomOnly: b.sbomOnly, force: b.force, requestedBy: p.sub, trigger: 'manual' });
    await audit(ctx.db, {
      tenant,
      actor: p.sub,
      action: 'scan.requested',
      target: s.artifactDigest,
      details: { workflowId: s.workflowId, runId: s.runId, joined: s.joined, force: !!b.force, sbomOnly: !!b.sbomOnly, image: b.image },
    });
    return reply
      .status(202)
      .send({
        workflowId: s.workflowId,
        runId: s.runId,
        artifactDigest: s.artifactDigest,
        imageRef: s.imageRef,
        imagePath: s.image.path,
        joined: s.joined,
        superseded: s.superseded,
        message: s.message,
      });
  });

  app.get('/scans/status', async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query as { workflowId?: string; runId?: string };
    if (!q.workflowId) throw badInput('workflowId is required');
    return scanStatus(deps, tenantOf(req), q.workflowId, q.runId || undefined);
  });

  /** Scan runs (scan_runs) with live Temporal status for those still running. */
  app.get('/scans', async (req) => {
    requireScope(req, 'evidence:read');
    const tenant = tenantOf(req);
    const q = req.query as { artifact?: string; limit?: string };
    if (q.artifact) validateDigest(q.artifact, 'artifact digest');
    const runs = await listScanRuns(ctx, tenant, { artifact: q.artifact, limit: Number(q.limit ?? 50) || 50 });
    const out: (ScanRun & { temporalStatus: string | null })[] = [];
    for (const r of runs) {
      let temporalStatus: string | null = null;
      if (deps.temporal) {
        try {
          temporalStatus = (await deps.temporal.client.workflow.getHandle(r.workflowId, r.scanId).describe()).status.name;
        } catch {
          temporalStatus = null; // history gone (retention) or Temporal unreachable: the DB record stands
        }
      }
      out.push({ ...r, temporalStatus });
    }
    return { items: out };
  });

  /** Pending/running scans (Temporal visibility) and auto-scan events that did not start one. */
  app.get('/scans/queue', async (req) => {
    requireScope(req, 'evidence:read');
    const tenant = tenantOf(req);
    const q = req.query as { artifact?: string };
    if (q.artifact) validateDigest(q.artifact, 'artifact digest');
    const t = temporalOrThrow(deps);
    const query = `WorkflowType='scanThenAttest' AND ExecutionStatus='Running'`;
    const prefix = q.artifact ? scanWorkflowId(tenant, q.artifact) : `scan-${tenant}-`;
    const workflows: Record<string, unknown>[] = [];
    for await (const w of t.client.workflow.list({ query, pageSize: 200 })) {
      // Promotion-started children carry no search attributes: match on the id, which embeds tenant and digest.
      if (q.artifact ? w.workflowId !== prefix : !w.workflowId.startsWith(prefix)) continue;
      let progress: unknown = null;
      progress = await t.client.workflow
        .getHandle(w.workflowId, w.runId)
        .query('progress')
        .catch(() => null);
      workflows.push({
        workflowId: w.workflowId,
        runId: w.runId,
        status: w.status.name,
        startTime: w.startTime.toISOString(),
        artifact: w.typedSearchAttributes.get(SCAN_SA.artifact) ?? null,
        progress,
      });
      if (workflows.length >= 200) break;
    }
    const params: unknown[] = [tenant];
    let where = `tenant_id=$1 AND status <> 'started'`;
    if (q.artifact) {
      params.push(q.artifact);
      where += ` AND artifact_digest=$2`;
    }
    const ev = await ctx.db.query(`SELECT * FROM scan_events WHERE ${where} ORDER BY received_at DESC LIMIT 100`, params);
    const events = ev.rows.map((r) => ({
      id: Number(r.id),
      trigger: r.trigger,
      repository: r.repository,
      tag: r.tag,
      artifact: r.artifact_digest,
      image: r.image,
      status: r.status,
      reason: r.reason,
      receivedAt: new Date(r.received_at).toISOString(),
    }));
    return { workflows, events, autoScan: await autoScanConfig(ctx, tenant) };
  });

  // ---- registry push events -----------------------------------------------------------
  app.post('/events/push', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const tenant = tenantOf(req);
    const b = parse(pushBody, req.body);
    if (b.digest) validateDigest(b.digest, 'digest');
    if (!b.image && !b.repository && !b.digest) throw badInput('push event needs image, repository or digest');
    const cfg = await autoScanConfig(ctx, tenant);
    const record = async (status: string, reason: string | null, extra: { workflowId?: string; digest?: string } = {}) => {
      const r = await ctx.db.query(
        `INSERT INTO scan_events (tenant_id, trigger, repository, tag, artifact_digest, image, status, reason, workflow_id) VALUES ($1,'push',$2,$3,$4,$5,$6,$7,$8) RETURNING id`,
        [tenant, b.repository ?? null, b.tag ?? null, extra.digest ?? b.digest ?? null, b.image ?? null, status, reason, extra.workflowId ?? null],
      );
      return Number(r.rows[0].id);
    };
    if (!cfg.enabled || !cfg.triggers.includes('push')) {
      const reason = !cfg.enabled
        ? 'auto_scan.enabled is false (stella scanner config set auto_scan.enabled true)'
        : `push is not in auto_scan.triggers (${cfg.triggers.join(',') || 'none'})`;
      const id = await record('ignored', reason);
      return reply.status(202).send({ eventId: id, status: 'ignored', reason });
    }
    // What to scan: the catalogue name or path given, else repository:tag / repository, else the digest.
    const candidates = [b.image, b.repository && b.tag ? `${b.repository}:${b.tag}` : undefined, b.repository, b.digest].filter((x): x is string => !!x);
    const t = temporalOrThrow(deps);
    let lastErr: StellaError | undefined;
    for (const image of candidates) {
      try {
        const s = await startScan(ctx, t, tenant, { image, requestedBy: `push:${p.sub}`, trigger: 'push' });
        if (b.digest && s.artifactDigest !== b.digest) {
          const reason = `image ${image} is ${s.artifactDigest}, not the pushed digest ${b.digest}`;
          const id = await record('failed', reason, { digest: b.digest });
          return reply.status(409).send({ eventId: id, status: 'failed', reason, workflowId: s.workflowId });
        }
        const id = await record('started', s.joined ? 'joined a running scan' : null, { workflowId: s.workflowId, digest: s.artifactDigest });
        return reply
          .status(202)
          .send({ eventId: id, status: 'started', workflowId: s.workflowId, runId: s.runId, artifactDigest: s.artifactDigest, joined: s.joined });
      } catch (e) {
        if (!(e instanceof StellaError) || (e.code !== 'NOT_FOUND' && e.code !== 'BAD_INPUT')) throw e;
        lastErr = e;
      }
    }
    const reason = `image not available to the scanner: ${lastErr?.message ?? 'unknown'} (register it: stella image register <name> <path>)`;
    const id = await record('queued', reason);
    return reply.status(202).send({ eventId: id, status: 'queued', reason });
  });

  // ---- scanner config -------------------------------------------------------------------
  app.get('/scanner/config', async (req) => {
    requireScope(req, 'evidence:read');
    const tenant = tenantOf(req);
    return {
      auto_scan: await autoScanConfig(ctx, tenant),
      engine: await scannerEngine(ctx, tenant),
      scanner: SCANNER,
      feed: (await listFeeds(ctx, tenant))[0] ?? null,
    };
  });

  app.put('/scanner/config', async (req) => {
    const p = requireScope(req, 'admin');
    const tenant = tenantOf(req);
    const b = parse(z.object({ key: z.string().min(1), value: z.string() }), req.body);
    const before = await autoScanConfig(ctx, tenant);
    const after = await setScannerConfig(ctx, tenant, b.key, b.value);
    await audit(ctx.db, { tenant, actor: p.sub, action: 'scanner.config.set', target: b.key, details: { value: b.value, before, after } });
    return { auto_scan: after, engine: await scannerEngine(ctx, tenant) };
  });

  // ---- image catalogue ------------------------------------------------------------------
  app.post('/images', async (req) => {
    const p = requireScope(req, 'evidence:write');
    const tenant = tenantOf(req);
    const b = parse(z.object({ name: z.string().min(1), path: z.string().min(1) }), req.body);
    const r = await registerImage(ctx, tenant, b.name, b.path, p.sub);
    await audit(ctx.db, { tenant, actor: p.sub, action: 'scan.image.register', target: b.name, details: { path: r.path, digest: r.digest } });
    return { ...r, queuedScans: await startQueuedPushScans(tenant, b.name, r.digest, p.sub) };
  });

  /**
   * Push events that arrived before their image was available to the scanner wait as
   * `queued`; registering the image starts them (once, joining one run per artifact).
   */
  async function startQueuedPushScans(tenant: string, name: string, digest: string, actor: string): Promise<{ eventIds: number[]; workflowId: string } | null> {
    const cfg = await autoScanConfig(ctx, tenant);
    if (!cfg.enabled || !cfg.triggers.includes('push') || !deps.temporal) return null;
    const q = await ctx.db.query(
      `SELECT id FROM scan_events WHERE tenant_id=$1 AND status='queued' AND trigger='push'
         AND (image=$2 OR repository=$2 OR repository || ':' || tag = $2 OR artifact_digest=$3)`,
      [tenant, name, digest],
    );
    if (!q.rowCount) return null;
    const started = await startScan(ctx, deps.temporal, tenant, { image: name, requestedBy: `push:${actor}`, trigger: 'push' });
    const ids = q.rows.map((x) => Number(x.id));
    await ctx.db.query(`UPDATE scan_events SET status='started', workflow_id=$2, artifact_digest=$3, reason=$4 WHERE id = ANY($1)`, [
      ids,
      started.workflowId,
      started.artifactDigest,
      `started when ${name} was registered`,
    ]);
    return { eventIds: ids, workflowId: started.workflowId };
  }

  app.get('/images', async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await listImages(ctx, tenantOf(req)) };
  });

  // ---- feeds, attestation import, rootpack import: raw bodies ---------------------------
  await rawScope(app, ctx.cfg.maxUploadBytes, (scope) => {
    scope.post('/feeds', async (req) => {
      const p = requireScope(req, 'evidence:write');
      const tenant = tenantOf(req);
      const source = (req.headers['x-stella-feed-source'] as string | undefined)?.slice(0, 1024);
      return importFeed(ctx, tenant, bodyBuffer(req), { actor: p.sub, ...(source ? { source } : {}) });
    });
    scope.post('/attestations/import', async (req) => {
      const p = requireScope(req, 'evidence:write');
      const tenant = tenantOf(req);
      const q = req.query as { attests?: string | string[] };
      const attests = (q.attests === undefined ? [] : Array.isArray(q.attests) ? q.attests : [q.attests]).map((a) => validateDigest(a, 'attested item id'));
      const r = await importAttestation(ctx, tenant, bodyBuffer(req), { actor: p.sub, attests });
      await audit(ctx.db, {
        tenant,
        actor: p.sub,
        action: 'attestation.import',
        target: r.id,
        details: { subject: r.subject, signer: r.signer, created: r.created },
      });
      return r;
    });
    scope.post('/rootpack', async (req) => {
      const p = requireScope(req, 'admin');
      return importTrust(ctx, tenantOf(req), bodyBuffer(req), p.sub);
    });
  });

  app.get('/feeds', async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await listFeeds(ctx, tenantOf(req)) };
  });

  // ---- attestations ---------------------------------------------------------------------
  app.post('/attestations', async (req, reply) => {
    const p = requireScope(req, 'evidence:write');
    const tenant = tenantOf(req);
    const b = parse(z.object({ subject: z.string(), type: z.string() }), req.body);
    validateDigest(b.subject, 'subject digest');
    const type = ensureKnownType(b.type);
    const lastRun = await ctx.db.query(
      `SELECT * FROM scan_runs WHERE tenant_id=$1 AND artifact_digest=$2 AND status IN ('completed','reused') ORDER BY finished_at DESC NULLS LAST LIMIT 1`,
      [tenant, b.subject],
    );
    let run = lastRun.rowCount ? runRow(lastRun.rows[0]) : null;
    // A reused run produced nothing itself: describe the run whose evidence it reused.
    if (run?.status === 'reused' && run.reusedFrom) {
      const orig = await ctx.db.query('SELECT * FROM scan_runs WHERE tenant_id=$1 AND scan_id=$2', [tenant, run.reusedFrom]);
      if (orig.rowCount) run = runRow(orig.rows[0]);
    }
    const latest = async (kind: string) =>
      (
        await ctx.db.query(
          `SELECT i.id FROM evidence_items i JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id
         WHERE i.tenant_id=$1 AND s.artifact_digest=$2 AND i.kind=$3 AND i.state='present' ORDER BY i.created_at DESC LIMIT 1`,
          [tenant, b.subject, kind],
        )
      ).rows[0]?.id as string | undefined;
    const present = async (id: string | null) =>
      id ? (await ctx.db.query(`SELECT 1 FROM evidence_items WHERE tenant_id=$1 AND id=$2 AND state='present'`, [tenant, id])).rowCount === 1 : false;
    const sbomId = run?.sbomId && (await present(run.sbomId)) ? run.sbomId : ((await latest('sbom')) ?? null);
    const reportId = run?.reportId && (await present(run.reportId)) ? run.reportId : ((await latest('scan-report')) ?? null);
    let imageRef = run?.imageRef ?? null;
    if (!imageRef) imageRef = await imageRefFor(ctx, tenant, b.subject);
    const feedRow = run?.feedDigest
      ? (await ctx.db.query('SELECT imported_at FROM advisory_feeds WHERE tenant_id=$1 AND digest=$2', [tenant, run.feedDigest])).rows[0]
      : undefined;
    const facts: ScanFacts = {
      // Without a scan run the provenance describes this request; with one it describes the scan (deterministic, so repeat calls reuse it).
      scanId: run?.scanId ?? `attest-${new Date().toISOString()}`,
      artifactDigest: b.subject,
      imageRef,
      trigger: run?.trigger ?? 'manual',
      requestedBy: run?.requestedBy ?? p.sub,
      scanTime: run?.scanTime ?? new Date().toISOString(),
      ...(run?.finishedAt ? { finishedAt: run.finishedAt } : {}),
      scanner: run?.scanner ?? SCANNER,
      feed: run?.feedDigest && feedRow ? { version: run.feedVersion!, digest: run.feedDigest, importedAt: new Date(feedRow.imported_at).toISOString() } : null,
      sbomId,
      reportId,
    };
    let statement;
    let attests: { id: string; relation?: string }[];
    if (type === 'sbom') {
      if (!sbomId) throw notFound(`no SBOM stored for ${b.subject}; generate one first: stella scan image --image ${imageRef ?? b.subject} --sbom-only`);
      statement = sbomStatement(facts, JSON.parse((await ctx.evidence.read(tenant, sbomId)).toString('utf8')));
      attests = [{ id: sbomId }];
    } else if (type === 'vuln') {
      if (!reportId) throw notFound(`no scan report stored for ${b.subject}; run: stella scan image --image ${imageRef ?? b.subject}`);
      statement = vulnStatement(facts, JSON.parse((await ctx.evidence.read(tenant, reportId)).toString('utf8')));
      attests = [{ id: reportId }];
    } else {
      statement = provenanceStatement(facts);
      attests = [sbomId, reportId].filter((x): x is string => !!x).map((id) => ({ id, relation: 'describes' }));
    }
    const r = await signAndStore(ctx, { tenant, statement, attests, ...(run ? { scanId: run.scanId } : {}), actor: p.sub });
    await audit(ctx.db, {
      tenant,
      actor: p.sub,
      action: 'attestation.create',
      target: r.id,
      details: { subject: b.subject, type, predicateType: ATTEST_TYPES[type], kid: r.kid, reused: r.reused },
    });
    return reply.status(r.reused ? 200 : 201).send({ ...r, type, subject: b.subject, attests: attests.map((a) => a.id), scanId: run?.scanId ?? null });
  });

  app.get('/attestations', async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query as { subject?: string };
    if (!q.subject) throw badInput('subject=<sha256:…> is required');
    validateDigest(q.subject, 'subject digest');
    return { items: await listAttestations(ctx, tenantOf(req), q.subject) };
  });

  app.get('/attestations/status', async (req) => {
    requireScope(req, 'evidence:read');
    return signerStatus(ctx, tenantOf(req));
  });

  app.get('/attestations/:id', async (req) => {
    requireScope(req, 'evidence:read');
    const { id } = req.params as { id: string };
    validateDigest(id, 'attestation id');
    return verifyAttestation(ctx, tenantOf(req), id);
  });

  // ---- keys and RootPack ----------------------------------------------------------------
  app.get('/keys', async (req) => {
    requireScope(req, 'evidence:read');
    return { items: await ctx.keys.list() };
  });

  const keyBody = z.object({ alg: z.enum(['ES256', 'EdDSA']).optional(), purpose: z.enum([SIGNING_PURPOSE, 'api-token']).optional() });

  app.post('/keys', async (req, reply) => {
    const p = requireScope(req, 'admin');
    const b = parse(keyBody, req.body);
    const k = await ctx.keys.generate({ alg: (b.alg ?? 'ES256') as SigAlg, purpose: b.purpose ?? SIGNING_PURPOSE });
    await audit(ctx.db, { tenant: tenantOf(req), actor: p.sub, action: 'keys.generate', target: k.kid, details: { alg: k.alg, purpose: k.purpose } });
    return reply.status(201).send(k);
  });

  app.post('/keys/rotate', async (req) => {
    const p = requireScope(req, 'admin');
    const b = parse(keyBody, req.body);
    const r = await ctx.keys.rotate({ purpose: b.purpose ?? SIGNING_PURPOSE, ...(b.alg ? { alg: b.alg as SigAlg } : {}) });
    await audit(ctx.db, {
      tenant: tenantOf(req),
      actor: p.sub,
      action: 'keys.rotate',
      target: r.active.kid,
      details: { purpose: r.active.purpose, alg: r.active.alg, retired: r.retired.map((k) => k.kid) },
    });
    return r;
  });

  /** ?scope=own: this locker's keys only (what export-rootpack writes); default: the effective trusted pack. */
  app.get('/rootpack', async (req) => {
    requireScope(req, 'evidence:read');
    const q = req.query as { scope?: string };
    return q.scope === 'own' ? exportRootPack(ctx.keys) : trustedRootPack(ctx);
  });
}

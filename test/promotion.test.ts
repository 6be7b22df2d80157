import { apiFor } from './support/api';
import { doctorChecksOf } from '../src/app/features';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { WorkflowFailedError } from '@temporalio/client';
import { harness, type Harness } from './support/context';
import { createMetrics } from '../src/app/metrics';
import { TOKEN_PURPOSE } from '../src/core/keys';
import { mintToken } from '../src/crypto/tokens';
import { sha256Digest } from '../src/lib/hash';
import { runDoctor } from '../src/core/doctor';
import { setPolicy, resolvePolicy } from '../src/core/promotion/policy';
import { mintPromotionActionToken } from '../src/core/promotion/actions';
import { createStellaWorker } from '../workers/worker';
import * as workflows from '../workflows';
import { storeAllEvidence, storeProvenance, storeSbom, storeScanReport, waitFor } from './support/promotion';

const TENANT = 'default';
const artifact = () => sha256Digest(`registry.example/app@${randomBytes(8).toString('hex')}`);

describe('promotion with evidence gates (real Temporal, PostgreSQL, fs blob store)', () => {
  let h: Harness;
  let app: FastifyInstance;
  let auth: { authorization: string };
  const api = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
    const r = await app.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload: payload as never } : {}) });
    return { status: r.statusCode, body: r.json() as any };
  };
  const status = (id: string) => api('GET', `/promotions/${id}`).then((r) => r.body);

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    const token = await mintToken(
      h.ctx.keys,
      { sub: 'ci-pipeline', tenant: TENANT, scopes: ['promotion:read', 'promotion:write', 'evidence:read'], ttlSeconds: 3600 },
      { purpose: TOKEN_PURPOSE },
    );
    auth = { authorization: `Bearer ${token}` };
  });
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it('runbook story: blocks with "SBOM not found", second start joins, operator stores evidence, retry promotes', async () => {
    const digest = artifact();
    const start = await api('POST', '/promotions', { artifact: digest, from: 'staging', to: 'prod' });
    expect(start.status).toBe(202);
    expect(start.body.id).toBe(`promotion-default-prod-${digest.slice(7)}`);
    expect(start.body.joined).toBe(false);

    const blocked = await waitFor(
      () => status(start.body.id),
      (s) => s.state === 'waiting-evidence',
      'waiting-evidence',
    );
    const sbomGate = blocked.gates.find((g: any) => g.name === 'sbom');
    expect(sbomGate.passed).toBe(false);
    expect(sbomGate.detail).toMatch(/^SBOM not found/);
    expect(sbomGate.missing).toEqual({ kind: 'sbom', command: `stella scan image --image ${digest} --sbom-only` });
    // Provenance comes from the builder: the hint is to import its signed provenance, not to have stella sign one.
    expect(blocked.gates.find((g: any) => g.name === 'provenance').missing.command).toMatch(/^stella attest import <provenance\.dsse\.json>/);
    expect(blocked.attempts).toBe(1);
    expect(Date.parse(blocked.deadline) - Date.parse(blocked.createdAt)).toBeGreaterThan(23 * 3600_000);

    // A second start while it runs joins the existing promotion.
    const again = await api('POST', '/promotions', { artifact: digest, from: 'staging', to: 'prod' });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ joined: true, id: start.body.id, promotionId: start.body.promotionId });
    expect(again.body.message).toMatch(/already running .*joined it/);

    // Diagnosis: evidence --missing, doctor, gauge.
    const missing = await api('GET', `/promotions/${start.body.id}/evidence?missing=true`);
    expect(missing.body.missing.map((m: any) => m.kind).sort()).toEqual(['attestation', 'sbom', 'scan-report']);
    const doctor = await runDoctor(
      { ctx: h.ctx, tenant: TENANT, scopes: ['admin'], temporal: null, args: {} },
      { check: 'check.orchestrator.evidence-availability' },
      doctorChecksOf(),
    );
    expect(doctor.results[0]!.status).toBe('WARN');
    expect(doctor.results[0]!.message).toContain(start.body.id);
    expect(doctor.results[0]!.message).toContain('SBOM not found');
    const metrics = await createMetrics(h.ctx.db).registry.metrics();
    expect(metrics).toMatch(/stella_promotions_waiting_evidence\{tenant="default",env="prod"\} 1/);

    // Mitigation: the missing evidence is stored; retry (update) re-evaluates and returns the new gates.
    await storeAllEvidence(h.ctx, TENANT, digest);
    const retried = await api('POST', `/promotions/${start.body.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.state).toBe('promoted');
    expect(retried.body.gates.every((g: any) => g.passed)).toBe(true);
    expect(retried.body.attempts).toBe(2);

    // Verification: status says promoted; exactly one promotion row, an audit entry, an event.
    const final = await waitFor(
      () => status(start.body.id),
      (s) => s.temporalStatus === 'COMPLETED',
      'completion',
    );
    expect(final.state).toBe('promoted');
    const rows = await h.ctx.db.query('SELECT state, gate_snapshot, finished_at FROM promotions WHERE artifact_digest=$1', [digest]);
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0].state).toBe('promoted');
    expect(rows.rows[0].finished_at).not.toBeNull();
    const gates = await h.ctx.db.query('SELECT attempt, gate, passed FROM promotion_gate_results WHERE promotion_id=$1 ORDER BY attempt, gate', [
      start.body.promotionId,
    ]);
    expect(gates.rows.filter((g) => g.attempt === 1).every((g) => !g.passed)).toBe(true);
    expect(gates.rows.filter((g) => g.attempt === 2).map((g) => g.passed)).toEqual([true, true, true]);
    const auditRows = await h.ctx.db.query(`SELECT actor FROM audit_log WHERE action='promotion.promoted' AND target=$1`, [digest]);
    expect(auditRows.rows).toEqual([{ actor: 'ci-pipeline' }]);
    const events = await h.ctx.db.query(`SELECT payload FROM timeline_events WHERE type='promotion.promoted' AND subject=$1`, [digest]);
    expect(events.rows).toHaveLength(1);
    expect(events.rows[0].payload.to).toBe('prod');

    // After completion the id is free again: a new promotion (all evidence present) passes at once.
    const next = await api('POST', '/promotions?wait=true&timeout=30', { artifact: digest, from: 'staging', to: 'prod' });
    expect(next.status).toBe(200);
    expect(next.body).toMatchObject({ joined: false, final: true, state: 'promoted' });
    expect(next.body.promotionId).not.toBe(start.body.promotionId);
    // Retrying a finished promotion is refused clearly.
    const late = await api('POST', `/promotions/${start.body.promotionId}/retry`);
    expect(late.status).toBe(409);
    expect(late.body.detail).toMatch(/already promoted/);
  });

  it('search attributes are visible through the Temporal visibility API (what the UI lists)', async () => {
    const digest = artifact();
    const start = await api('POST', '/promotions', { artifact: digest, to: 'qa' });
    await waitFor(
      () => status(start.body.id),
      (s) => s.state === 'waiting-evidence',
      'waiting-evidence',
    );
    const query = `WorkflowType='promotion' AND StellaPromotionState='waiting-evidence' AND StellaArtifactDigest='${digest}'`;
    const listed = await waitFor(
      async () => {
        const out: any[] = [];
        for await (const w of h.client.workflow.list({ query }))
          out.push({ workflowId: w.workflowId, status: w.status.name, searchAttributes: w.searchAttributes });
        return out;
      },
      (l) => l.length === 1,
      'visibility',
    );
    console.log(`visibility query: ${query}\n${JSON.stringify(listed, null, 2)}`);
    expect(listed[0]).toMatchObject({ workflowId: start.body.id, status: 'RUNNING' });
    expect(listed[0].searchAttributes).toMatchObject({
      StellaArtifactDigest: [digest],
      StellaEnvironment: ['qa'],
      StellaPromotionState: ['waiting-evidence'],
      StellaTenant: ['default'],
    });
    const viaApi = await waitFor(
      () => api('GET', '/promotions?state=waiting-evidence'),
      (r) => r.body.items.some((i: any) => i.id === start.body.id),
      'list endpoint',
    );
    expect(viaApi.body.query).toBe(`WorkflowType='promotion' AND StellaTenant='default' AND StellaPromotionState='waiting-evidence'`);
    const abort = await api('POST', `/promotions/${start.body.id}/abort`, { reason: 'test cleanup' });
    expect(abort.status).toBe(200);
    expect(abort.body.state).toBe('aborted');
    const done = await waitFor(
      () => status(start.body.id),
      (s) => s.temporalStatus === 'COMPLETED',
      'abort',
    );
    expect(done.state).toBe('aborted');
    expect(done.reason).toBe('test cleanup');
  });

  it('a worker killed (SIGKILL) mid-promotion and restarted completes it with one promotion record', async () => {
    // The harness worker steps aside; promotions on this queue run in a separate worker process.
    await h.stopWorker();
    const spawnWorker = async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/promotion-worker-proc.ts'], {
        env: {
          ...process.env,
          STELLA_DATA_DIR: h.ctx.cfg.dataDir,
          DATABASE_URL: h.ctx.cfg.databaseUrl!,
          STELLA_TEMPORAL_ADDRESS: h.ctx.cfg.temporal.address!,
          STELLA_TASK_QUEUE: h.ctx.cfg.temporal.taskQueue,
          STELLA_TEST_BUNDLE: inject('workflowBundlePath'),
          STELLA_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('worker-ready') && resolve());
        child.once('exit', (code) => reject(new Error(`worker process exited early (${code})`)));
      });
      return child;
    };
    const digest = artifact();
    let proc = await spawnWorker();
    try {
      const start = await api('POST', '/promotions', { artifact: digest, from: 'staging', to: 'perf' });
      await waitFor(
        () => status(start.body.id),
        (s) => s.state === 'waiting-evidence',
        'waiting-evidence',
      );
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      // While no worker runs: evidence arrives and the operator signals retry (held by the server).
      await storeAllEvidence(h.ctx, TENANT, digest);
      const token = await mintPromotionActionToken(h.ctx.keys, {
        sub: 'operator',
        tenant: TENANT,
        promotionId: start.body.promotionId,
        workflowId: start.body.id,
        action: 'retry',
      });
      await h.client.workflow.getHandle(start.body.id).signal('retry', { by: 'operator', token });
      proc = await spawnWorker();
      const result = await h.client.workflow.getHandle(start.body.id).result();
      expect(result.state).toBe('promoted');
    } finally {
      proc.kill('SIGKILL');
    }
    const rows = await h.ctx.db.query('SELECT state, attempts FROM promotions WHERE artifact_digest=$1', [digest]);
    expect(rows.rows).toEqual([{ state: 'promoted', attempts: 2 }]);
    const events = await h.ctx.db.query(`SELECT count(*)::int AS n FROM timeline_events WHERE type='promotion.promoted' AND subject=$1`, [digest]);
    expect(events.rows[0].n).toBe(1);
    // the harness worker is gone; start a fresh one for the remaining tests
    const w2 = await createStellaWorker(h.ctx, { workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') }, shutdownGraceTime: '2s' });
    const r2 = w2.worker.run().finally(() => w2.connection.close());
    (h as any).stopWorker = async () => {
      if (w2.worker.getState() === 'RUNNING') w2.worker.shutdown();
      await r2;
    };
  });

  it('critical findings fail the gate at once; untrusted signatures do not count; approval is required when policy says so', async () => {
    // critical findings: a violation, not missing evidence
    const bad = artifact();
    const sbom = await storeSbom(h.ctx, TENANT, bad);
    await storeScanReport(h.ctx, TENANT, bad, sbom.id, { critical: 2 });
    await storeProvenance(h.ctx, TENANT, bad);
    const s1 = await api('POST', '/promotions?wait=30', { artifact: bad, to: 'prod' });
    expect(s1.body).toMatchObject({ final: true, state: 'failed' });
    expect(s1.body.reason).toContain('2 critical (max 0)');

    // an attestation signed with a key not trusted for signing (the API-token key) is refused at ingest: nothing stored
    const untrusted = artifact();
    const sb2 = await storeSbom(h.ctx, TENANT, untrusted);
    await storeScanReport(h.ctx, TENANT, untrusted, sb2.id);
    const tokenKey = await h.ctx.keys.signer((await h.ctx.keys.active(TOKEN_PURPOSE)).kid);
    await expect(storeProvenance(h.ctx, TENANT, untrusted, { key: tokenKey })).rejects.toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringMatching(/unknown key/),
    });
    const stored = await h.ctx.db.query(
      `SELECT count(*)::int AS n FROM evidence_items i JOIN evidence_subjects s ON s.item_id=i.id WHERE s.artifact_digest=$1 AND i.kind='attestation' AND i.predicate_type=$2`,
      [untrusted, 'https://slsa.dev/provenance/v1'],
    );
    expect(stored.rows[0].n).toBe(0);
    const s2 = await api('POST', '/promotions', { artifact: untrusted, to: 'prod' });
    const blocked = await waitFor(
      () => status(s2.body.id),
      (s) => s.state === 'waiting-evidence',
      'waiting-evidence',
    );
    const prov = blocked.gates.find((g: any) => g.name === 'provenance');
    expect(prov.passed).toBe(false);
    expect(prov.detail).toMatch(/attestation missing: no https:\/\/slsa.dev\/provenance\/v1 statement/);
    expect(blocked.gates.filter((g: any) => g.passed).map((g: any) => g.name)).toEqual(['sbom', 'vulnerability-scan']);
    await api('POST', `/promotions/${s2.body.id}/abort`, { reason: 'cleanup' });

    // approval
    await setPolicy(h.ctx.db, { tenant: TENANT, env: 'prod-eu', text: 'requireApproval: true\napprovals: 1\nwaitDeadline: 2h\n', actor: 'test' });
    const ok = artifact();
    await storeAllEvidence(h.ctx, TENANT, ok);
    const s3 = await api('POST', '/promotions', { artifact: ok, to: 'prod-eu' });
    const waiting = await waitFor(
      () => status(s3.body.id),
      (s) => s.state === 'waiting-approval',
      'waiting-approval',
    );
    expect(waiting.approvalsRequired).toBe(1);
    const approver = await mintToken(
      h.ctx.keys,
      { sub: 'release-manager', tenant: TENANT, scopes: ['promotion:write'], ttlSeconds: 600 },
      { purpose: TOKEN_PURPOSE },
    );
    const approved = await app.inject({
      method: 'POST',
      url: `/promotions/${s3.body.id}/approve`,
      headers: { authorization: `Bearer ${approver}` },
      payload: { comment: 'LGTM' },
    });
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({ state: 'promoted', approvals: [{ by: 'release-manager', comment: 'LGTM' }] });
    const done = await waitFor(
      () => status(s3.body.id),
      (s) => s.temporalStatus === 'COMPLETED',
      'approval',
    );
    expect(done.state).toBe('promoted');
    expect(done.approvals).toMatchObject([{ by: 'release-manager', comment: 'LGTM' }]);
  });

  it('policies are validated and versioned; the built-in default applies when none is set', async () => {
    const policyAdmin = await mintToken(
      h.ctx.keys,
      { sub: 'policy-owner', tenant: TENANT, scopes: ['policy:admin', 'promotion:read'], ttlSeconds: 600 },
      { purpose: TOKEN_PURPOSE },
    );
    const api = async (method: 'GET' | 'PUT', url: string, payload?: unknown) => {
      const r = await app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${policyAdmin}` },
        ...(payload !== undefined ? { payload: payload as never } : {}),
      });
      return { status: r.statusCode, body: r.json() as any };
    };
    const def = await resolvePolicy(h.ctx.db, TENANT, 'nowhere');
    expect(def).toMatchObject({ source: 'built-in', version: null, policy: { autoGenerate: false, waitDeadline: '24h', maxEvidenceAge: '30d' } });
    expect(def.policy.requirements.map((r) => r.kind)).toEqual(['sbom', 'scan-report', 'attestation']);
    const doc = 'requirements:\n  - kind: sbom\n  - kind: scan-report\n    thresholds: { critical: 0, high: 5 }\nmaxEvidenceAge: 7d\nautoGenerate: true\n';
    const put = await api('PUT', '/promotion-policies/staging', { document: doc });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ env: 'staging', version: 1, changed: true });
    const same = await api('PUT', '/promotion-policies/staging', { document: JSON.stringify(put.body.policy) });
    expect(same.body).toMatchObject({ version: 1, changed: false });
    const shown = await api('GET', '/promotion-policies?env=staging');
    expect(shown.body.promotion).toMatchObject({ source: 'environment', version: 1, policy: { maxEvidenceAge: '7d', autoGenerate: true } });
    const bad = await api('PUT', '/promotion-policies/staging', { document: 'requirements:\n  - kind: sbom\n    format: spdx\n' });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/^invalid policy: requirements\.0\.format/);
    const bad2 = await api('PUT', '/promotion-policies/staging', { document: 'waitDeadline: soon' });
    expect(bad2.body.detail).toMatch(/waitDeadline: expected a duration/);
    const audit = await h.ctx.db.query(`SELECT count(*)::int AS n FROM audit_log WHERE action='promotion.policy.set' AND target='env:staging'`);
    expect(audit.rows[0].n).toBe(1);
  });

  it.skipIf(typeof (workflows as Record<string, unknown>).scanThenAttest !== 'function')(
    'auto-generation: missing evidence is produced by the scanThenAttest child, then the promotion passes',
    async () => {
      // Built by the scanner engineer: loaded dynamically so this file does not depend on it otherwise.
      const { buildOciFixture } = await import('./support/oci-fixture');
      const { registerImage } = await import('../src/core/scan/catalogue');
      const lock = { name: 'x', lockfileVersion: 3, packages: { '': { name: 'x' }, 'node_modules/left-pad': { version: '1.3.0' } } };
      const fx = await buildOciFixture({ ref: 'shop:42', layers: [[{ path: 'app/package-lock.json', content: JSON.stringify(lock) }]], archives: false });
      try {
        await registerImage(h.ctx, TENANT, 'registry.example/shop:42', fx.dir, 'test');
        await setPolicy(h.ctx.db, { tenant: TENANT, env: 'auto', text: 'autoGenerate: true\nwaitDeadline: 1h\n', actor: 'test' });
        // The default policy: stella's scan-then-attest (generated) covers SBOM and scan; provenance comes from the builder.
        await storeProvenance(h.ctx, TENANT, fx.digest);
        const s = await api('POST', '/promotions?wait=90', { artifact: fx.digest, from: 'staging', to: 'auto' });
        expect(s.body.reason ?? null).toBeNull();
        expect(s.body).toMatchObject({ final: true, state: 'promoted', imageRef: 'registry.example/shop:42' });
        expect(s.body.attempts).toBe(2);
        const items = await h.ctx.db.query(
          `SELECT i.kind, i.predicate_type FROM evidence_items i JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id WHERE s.artifact_digest=$1`,
          [fx.digest],
        );
        expect(items.rows.map((r) => r.kind)).toEqual(expect.arrayContaining(['attestation', 'sbom', 'scan-report']));
        // the child ran under the id the scan module uses
        const child = await h.client.workflow.getHandle(`scan-default-${fx.digest.slice(7)}`).describe();
        expect(child.status.name).toBe('COMPLETED');
        const first = await h.ctx.db.query('SELECT gate, passed FROM promotion_gate_results WHERE promotion_id=$1 AND attempt=1', [s.body.promotionId]);
        // First attempt: only the builder's provenance was there; stella generated (and signed) the SBOM and scan.
        expect(Object.fromEntries(first.rows.map((r) => [r.gate, r.passed]))).toEqual({ sbom: false, 'vulnerability-scan': false, provenance: true });
        const gen = await h.ctx.db.query(
          `SELECT i.kind, i.provenance, i.signer FROM evidence_items i JOIN evidence_subjects s ON s.tenant_id=i.tenant_id AND s.item_id=i.id
            WHERE s.artifact_digest=$1 AND i.producer->>'type' IN ('scanner','stella-attestor')`,
          [fx.digest],
        );
        expect(gen.rows.length).toBeGreaterThanOrEqual(4);
        expect(gen.rows.every((r) => r.provenance === 'produced-by-stella')).toBe(true);
        expect(gen.rows.filter((r) => r.kind === 'attestation').every((r) => typeof r.signer === 'string')).toBe(true);
      } finally {
        await fx.cleanup();
      }
    },
  );

  it('rejects malformed requests with one clear line', async () => {
    expect((await api('POST', '/promotions', { artifact: 'sha256:nothex', to: 'prod' })).body.detail).toMatch(/malformed artifact digest/);
    expect((await api('POST', '/promotions', { artifact: artifact(), to: 'Prod!' })).body.detail).toMatch(/malformed target environment/);
    expect((await api('GET', '/promotions?state=stuck')).status).toBe(400);
    expect((await api('GET', '/promotions/promotion-default-prod-ffff')).status).toBe(404);
    const noWrite = await mintToken(h.ctx.keys, { sub: 'viewer', tenant: TENANT, scopes: ['promotion:read'], ttlSeconds: 600 }, { purpose: TOKEN_PURPOSE });
    const r = await app.inject({
      method: 'POST',
      url: '/promotions',
      headers: { authorization: `Bearer ${noWrite}` },
      payload: { artifact: artifact(), to: 'prod' },
    });
    expect(r.statusCode).toBe(403);
  });

  it('fails a promotion with a clear reason when the workflow result is awaited directly', async () => {
    const bad = artifact();
    const sbom = await storeSbom(h.ctx, TENANT, bad);
    await storeScanReport(h.ctx, TENANT, bad, sbom.id, { critical: 1 });
    const err = await h.client.workflow
      .execute('promotion', {
        taskQueue: h.ctx.cfg.temporal.taskQueue,
        workflowId: `promotion-default-x-${bad.slice(7)}`,
        args: [{ tenant: TENANT, artifactDigest: bad, fromEnv: 'dev', toEnv: 'x', requestedBy: 'test' }],
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.message).toMatch(/^policy gate failed: vulnerability-scan/);
  });
});

import { apiFor, bearer, dpopAuth } from './support/api';
import { FEATURES } from '../src/app/features';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { harness, type Harness } from './support/context';
import { canonicalJson } from '../src/lib/canonical';
import { sha256Digest } from '../src/lib/hash';
import { feedFromRecords, matchPackages } from '../src/scanner/osv';
import type { Package } from '../src/scanner/detectors/types';
import { buildReplay, recordReplay, type ReplayRecordInput } from '../src/core/replay/record';
import { getRun, loadRunFiles, verifyRun } from '../src/core/replay/runs';
import { writeKit, kitDir } from '../src/core/replay/kit';
import { replayVerify } from '../src/core/replay/verify';
import { buildBundle, readBundle } from '../src/core/replay/bundles';
import { manifestBytes, signManifest, type ReplayManifest } from '../src/core/replay/manifest';
import { exportRootPack, writeRootPackFile } from '../src/crypto/rootpack';
import { KeyStore } from '../src/crypto/keys';
import { SIGNING_PURPOSE } from '../src/core/keys';
import { ensureSchedules } from '../src/temporal/schedules';
import { createMetrics } from '../src/app/metrics';
import { createAnchor } from '../src/core/anchoring';
import { replayVerifyNightly } from '../workflows/replay';

const BIN = join(__dirname, '..', 'bin', 'stella.mjs');
const ARTIFACT = sha256Digest('registry.example/shop@2');

const packages: Package[] = [
  { ecosystem: 'npm', name: 'lodash', version: '4.17.20', purl: 'pkg:npm/lodash@4.17.20', locations: ['/app/package-lock.json'] },
  { ecosystem: 'npm', name: 'left-pad', version: '1.3.0', purl: 'pkg:npm/left-pad@1.3.0', locations: ['/app/package-lock.json'] },
];
const records = [
  {
    id: 'GHSA-35jh-r3h4-6jhm',
    modified: '2021-05-20T00:00:00Z',
    summary: 'Command injection in lodash',
    aliases: ['CVE-2021-23337'],
    database_specific: { severity: 'HIGH' },
    affected: [{ package: { ecosystem: 'npm', name: 'lodash' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '4.17.21' }] }] }],
  },
  {
    id: 'GHSA-crit-0000-0000',
    modified: '2024-01-01T00:00:00Z',
    summary: 'A critical one in left-pad',
    database_specific: { severity: 'CRITICAL' },
    affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '1.0.0' }, { fixed: '1.3.1' }] }] }],
  },
];

let t0 = 0;
const at = (ms: number) => new Date(t0 + ms).toISOString();

function recordInput(scanId: string, tenant = 'default'): ReplayRecordInput {
  const feed = feedFromRecords(records);
  const findings = matchPackages(packages, feed);
  return {
    tenant,
    scanId,
    artifactDigest: ARTIFACT,
    imageRef: 'shop:2',
    packages,
    feed,
    sbom: { bomFormat: 'CycloneDX', specVersion: '1.6', components: packages.map((p) => ({ purl: p.purl })) },
    findings,
    logs: `${scanId}: scanned 2 packages\n`,
    createdAt: at(1),
  };
}

function stella(args: string[], extraEnv: Record<string, string> = {}) {
  // No servers reachable: the offline path must not need any.
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      STELLA_API_URL: 'http://127.0.0.1:9',
      STELLA_DATA_DIR: mkdtempSync(join(tmpdir(), 'offline-')),
      ...extraEnv,
    },
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('replay: signed manifests, deterministic bundles, offline and nightly verification', () => {
  let h: Harness;
  let kitRoot: string;
  /** The locker's RootPack as an operator would get it out of band: the only one offline replay trusts. */
  const trustedFile = async () => {
    const f = join(mkdtempSync(join(tmpdir(), 'trusted-')), 'trusted-rootpack.json');
    await writeRootPackFile(f, await exportRootPack(h.ctx.keys));
    return f;
  };
  let trusted: string;
  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    t0 = Date.now();
    kitRoot = mkdtempSync(join(tmpdir(), 'kit-'));
    trusted = await trustedFile();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function exportKit(scanId: string, root = kitRoot) {
    const run = await getRun(h.ctx, 'default', scanId);
    const f = await loadRunFiles(h.ctx, run);
    const dir = kitDir(root, scanId);
    await writeKit(dir, { manifest: f.manifest!, envelope: f.envelope!, input: f.input!, output: f.output!, rootpack: await exportRootPack(h.ctx.keys) });
    return dir;
  }

  it('bundles are deterministic and the recorded run verifies online', async () => {
    const signer = await h.ctx.keys.signer((await h.ctx.keys.active(SIGNING_PURPOSE)).kid);
    const a = await buildReplay(recordInput('scan-det'), signer);
    const b = await buildReplay(recordInput('scan-det'), signer);
    expect(a.input.equals(b.input)).toBe(true);
    expect(a.output.equals(b.output)).toBe(true);
    expect(a.manifest).toEqual(b.manifest);

    const rec = await recordReplay(h.ctx, recordInput('scan-1'));
    expect(rec.manifest.verdict).toBe('fail'); // one critical finding, default policy allows 0
    expect(rec.manifest.counts).toMatchObject({ critical: 1, high: 1 });
    // mirrored into the Evidence Locker as replay-bundle items of the artifact
    const items = await h.ctx.evidence.list({ tenant: 'default', artifact: ARTIFACT, kind: 'replay-bundle' });
    expect(items.items.map((i) => i.id).sort()).toEqual([...rec.evidenceIds].sort());
    // recording again (a retried activity) changes nothing
    const again = await recordReplay(h.ctx, recordInput('scan-1'));
    expect(again.manifestDigest).toBe(rec.manifestDigest);
    const r = await verifyRun(h.ctx, 'default', 'scan-1', 'test');
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.recomputed?.status).toBe('fail');
  });

  it('an offline replay in a separate process with no servers gives the same verdict byte for byte', async () => {
    const dir = await exportKit('scan-1');
    const online = await verifyRun(h.ctx, 'default', 'scan-1', 'test');
    const logDir = mkdtempSync(join(tmpdir(), 'oplogs-'));
    const out = join(logDir, 'verdict.json');
    // The kit's own rootpack.json is never trusted: with no --rootpack and nothing configured, refused.
    const none = stella(['replay', join(dir, 'manifest.json'), '--strict', '--offline']);
    expect(none.code).toBe(2);
    expect(none.out).toBe('');
    expect(none.err).toMatch(/^stella: no trusted RootPack: pass --rootpack <file> or configure one .*STELLA_TRUSTED_ROOTPACK/);
    const r = stella([
      'replay',
      join(dir, 'manifest.json'),
      '--strict',
      '--offline',
      '--rootpack',
      trusted,
      '--log-dir',
      logDir,
      '--output',
      out,
      '--format',
      'json',
    ]);
    expect(r.code, r.err).toBe(0);
    const offline = JSON.parse(r.out);
    expect(offline.ok).toBe(true);
    expect(offline.trustedRootPack).toMatchObject({ source: '--rootpack', path: trusted, fingerprint: expect.stringMatching(/^sha256:/) });
    expect(offline.embeddedRootPack).toMatchObject({ fingerprint: expect.stringMatching(/^sha256:/), keysTrusted: true });
    // The configured trust file works the same way.
    const viaEnv = stella(['replay', join(dir, 'manifest.json'), '--strict', '--offline', '--format', 'json'], { STELLA_TRUSTED_ROOTPACK: trusted });
    expect(viaEnv.code, viaEnv.err).toBe(0);
    expect(JSON.parse(viaEnv.out).trustedRootPack).toMatchObject({ source: 'STELLA_TRUSTED_ROOTPACK', fingerprint: offline.trustedRootPack.fingerprint });
    expect(canonicalJson(offline.recomputed)).toBe(canonicalJson(online.recomputed));
    expect(JSON.parse(readFileSync(join(logDir, 'scan-1', 'verify.json'), 'utf8')).ok).toBe(true);
    expect(JSON.parse(readFileSync(out, 'utf8')).verdict.status).toBe('fail');
  });

  it('a tampered input bundle, a changed output, a drifted tool hash and an untrusted signer each fail with their own code', async () => {
    const base = await exportKit('scan-1', mkdtempSync(join(tmpdir(), 'kit-base-')));
    const copy = (name: string) => {
      const d = mkdtempSync(join(tmpdir(), `kit-${name}-`));
      for (const f of ['manifest.json', 'manifest.dsse.json', 'inputbundle.tar.zst', 'outputbundle.tar.zst', 'rootpack.json'])
        copyFileSync(join(base, f), join(d, f));
      return d;
    };
    const run = (d: string, extra: string[] = []) => {
      const r = stella(['verify', join(d, 'manifest.json'), '--explain', '--strict', '--rootpack', trusted, ...extra]);
      return { code: r.code, json: JSON.parse(r.out || '{}'), err: r.err };
    };
    const signer = await h.ctx.keys.signer((await h.ctx.keys.active(SIGNING_PURPOSE)).kid);
    const resign = async (d: string, m: ReplayManifest, s = signer) => {
      writeFileSync(join(d, 'manifest.json'), manifestBytes(m));
      writeFileSync(join(d, 'manifest.dsse.json'), JSON.stringify(await signManifest(m, s)));
    };
    const manifest = JSON.parse(readFileSync(join(base, 'manifest.json'), 'utf8')) as ReplayManifest;

    // 1. tampered input bundle
    const t1 = copy('input');
    const ib = readFileSync(join(t1, 'inputbundle.tar.zst'));
    ib[ib.length - 5] ^= 0xff;
    writeFileSync(join(t1, 'inputbundle.tar.zst'), ib);
    const r1 = run(t1);
    expect(r1.code).toBe(4);
    expect(r1.json.codes).toContain('INPUT_DIGEST_MISMATCH');

    // 2. changed output (re-signed by a trusted key, so only the replay comparison catches it)
    const t2 = copy('output');
    const out = await readBundle(readFileSync(join(base, 'outputbundle.tar.zst')));
    const findings = JSON.parse(out.get('findings.json')!.toString()).filter((f: { id: string }) => f.id !== 'GHSA-crit-0000-0000');
    const files = Object.fromEntries([...out.entries()].map(([k, v]) => [k, v]));
    files['findings.json'] = Buffer.from(canonicalJson(findings) + '\n');
    files['verdict.json'] = Buffer.from(canonicalJson({ ...JSON.parse(out.get('verdict.json')!.toString()), status: 'pass' }) + '\n');
    const nb = await buildBundle(files);
    writeFileSync(join(t2, 'outputbundle.tar.zst'), nb.bytes);
    await resign(t2, { ...manifest, outputBundle: { ...manifest.outputBundle, digest: nb.digest, size: nb.bytes.length }, verdict: 'pass' });
    const r2 = run(t2);
    expect(r2.code).toBe(4);
    expect(r2.json.codes).toEqual(expect.arrayContaining(['FINDINGS_MISMATCH', 'VERDICT_MISMATCH']));
    expect(r2.json.diff.findingsAdded).toEqual(['GHSA-crit-0000-0000|npm|left-pad|1.3.0']);

    // 3. drifted tool hash
    const t3 = copy('tool');
    await resign(t3, { ...manifest, scanner: { ...manifest.scanner, toolHashes: { 'stella-scanner': sha256Digest('an older scanner build') } } });
    const r3 = run(t3);
    expect(r3.code).toBe(4);
    expect(r3.json.codes).toEqual(['TOOL_HASH_DRIFT']);

    // 4. untrusted signer
    const t4 = copy('signer');
    const stranger = await KeyStore.open(mkdtempSync(join(tmpdir(), 'stranger-')));
    await stranger.generate({ alg: 'ES256' });
    await resign(t4, manifest, await stranger.signer());
    const r4 = run(t4);
    expect(r4.code).toBe(4);
    expect(r4.json.codes).toEqual(['SIGNER_UNTRUSTED']);

    // 5. re-forged kit: changed verdict, re-signed by a fresh key whose RootPack sits beside the manifest
    const t5 = copy('forged');
    await resign(t5, { ...manifest, verdict: 'pass', createdAt: new Date().toISOString() }, await stranger.signer());
    await writeRootPackFile(join(t5, 'rootpack.json'), await exportRootPack(stranger));
    const selfTrust = stella(['verify', join(t5, 'manifest.json'), '--strict', '--rootpack', join(t5, 'rootpack.json'), '--format', 'json']);
    expect(JSON.parse(selfTrust.out).problems.map((p: { code: string }) => p.code)).not.toContain('SIGNER_UNTRUSTED'); // what trusting the kit's own RootPack allowed
    const r5 = stella(['verify', join(t5, 'manifest.json'), '--strict', '--rootpack', trusted, '--format', 'json']);
    expect(r5.code).toBe(4);
    const j5 = JSON.parse(r5.out);
    expect(j5.problems.map((p: { code: string }) => p.code)).toContain('SIGNER_UNTRUSTED');
    expect(j5.embeddedRootPack).toMatchObject({ keysTrusted: false, untrustedKeyIds: [(await stranger.active()).kid] });
    expect(stella(['verify', join(t5, 'manifest.json'), '--strict']).code).toBe(2);

    // the untouched kit still passes
    expect(run(base).code).toBe(0);
  });

  it('a manifest signed before a key rotation still verifies; the nightly run verifies N per tenant and holds failures', async () => {
    await recordReplay(h.ctx, { ...recordInput('scan-2'), createdAt: at(2) });
    await recordReplay(h.ctx, { ...recordInput('scan-3'), createdAt: at(3) });
    await recordReplay(h.ctx, { ...recordInput('acme-1', 'acme'), createdAt: at(4) });
    // rotate: scan-1..3 were signed by the key now retired
    await h.ctx.keys.rotate({ purpose: SIGNING_PURPOSE });
    const rotated = await replayVerify({
      ...(await loadRunFiles(h.ctx, await getRun(h.ctx, 'default', 'scan-2'))),
      inputBundle: null,
      outputBundle: null,
      rootpack: await exportRootPack(h.ctx.keys),
      strict: true,
    } as never);
    expect(rotated.problems.map((p) => p.code)).not.toContain('SIGNER_UNTRUSTED');

    // corrupt the stored output bundle of scan-3 (the newest default-tenant run)
    const run3 = await getRun(h.ctx, 'default', 'scan-3');
    await h.ctx.blobs.primary.withPrefix('replay').writeRaw(run3.outputDigest, Buffer.from('rotten'));

    const result = await h.client.workflow.execute(replayVerifyNightly, {
      args: [{ latestN: 2, concurrency: 2 }],
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: `nightly-${Date.now()}`,
    });
    expect(result, JSON.stringify(result)).toMatchObject({ tenants: 2, verified: 3, passed: 2 });
    expect(result.failed).toHaveLength(1);
    expect(result.failed[0]).toMatchObject({ tenant: 'default', scanId: 'scan-3' });
    expect(result.failed[0].codes).toContain('BUNDLE_UNREADABLE');
    const holds = await h.ctx.db.query(`SELECT * FROM legal_holds WHERE tenant_id='default'`);
    expect(holds.rowCount).toBe(1);
    const ev = await h.ctx.db.query(`SELECT * FROM timeline_events WHERE type='replay.hold.created'`);
    expect(ev.rowCount).toBeGreaterThanOrEqual(1);
    const stored = await h.ctx.db.query(`SELECT last_result, last_codes FROM replay_runs WHERE scan_id='scan-3'`);
    expect(stored.rows[0]).toMatchObject({ last_result: 'failed' });
    const metrics = await createMetrics(h.ctx.db).registry.metrics();
    expect(metrics).toMatch(/stella_replay_verifications\{result="failed"\} [1-9]/);
    expect(metrics).toMatch(/stella_replay_bundle_size_bytes\{bundle="input"\} [1-9]/);
  });

  it('--ledger finds the manifest in a signed anchor; bundles need replay:read with DPoP', async () => {
    const app = await apiFor(h);
    const reader = await dpopAuth(h, ['replay:read']);
    const ledger = '/replay/runs/scan-1/ledger';
    const before = await app.inject({ method: 'GET', url: ledger, headers: await reader.headers('GET', ledger) });
    expect(before.json().ok).toBe(false);
    await createAnchor(h.ctx, { force: true } as never);
    const after = await app.inject({ method: 'GET', url: ledger, headers: await reader.headers('GET', ledger) });
    expect(after.json(), after.body).toMatchObject({
      ok: true,
      leafIndex: expect.any(Number),
      treeSize: expect.any(Number),
      anchor: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const noScope = await app.inject({ method: 'GET', url: '/replay/runs/scan-1/kit', headers: await bearer(h, ['evidence:read']) });
    expect(noScope.statusCode).toBe(403);
    const acme = await dpopAuth(h, ['replay:read'], 'acme');
    const otherTenant = await app.inject({ method: 'GET', url: '/replay/runs/scan-1', headers: await acme.headers('GET', '/replay/runs/scan-1') });
    expect(otherTenant.statusCode).toBe(404);
    const kitUrl = '/replay/runs/scan-1/kit';
    const asBearer = await app.inject({ method: 'GET', url: kitUrl, headers: await bearer(h, ['replay:read']) });
    expect(asBearer.statusCode).toBe(401);
    const kit = await app.inject({ method: 'GET', url: kitUrl, headers: await reader.headers('GET', kitUrl) });
    expect(kit.statusCode).toBe(200);
    await app.close();
  });

  it('replays from an offline evidence pack (runbook: stella replay --evidence evidence-pack.tar.gz --output verdict.json)', async () => {
    const { exportEvidencePack } = await import('../src/core/backup/pack/export');
    const dir = mkdtempSync(join(tmpdir(), 'pack-'));
    const pack = join(dir, 'evidence-pack.tar.gz');
    await createAnchor(h.ctx, { force: true } as never);
    await exportEvidencePack(h.ctx, { tenant: 'default', digest: ARTIFACT, includeDeps: true, actor: 'test' }, pack);
    const verdictFile = join(dir, 'verdict.json');
    // keys were rotated above: the operator's trusted RootPack is the current one
    const trustedNow = await trustedFile();
    const none = stella(['replay', '--evidence', pack, '--output', verdictFile]);
    expect(none.code).toBe(2);
    expect(none.err).toContain('no trusted RootPack');
    const r = stella(['replay', '--evidence', pack, '--output', verdictFile, '--format', 'json', '--rootpack', trustedNow]);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).embeddedRootPack).toMatchObject({ fingerprint: expect.stringMatching(/^sha256:/), keysTrusted: true });
    const v = JSON.parse(readFileSync(verdictFile, 'utf8'));
    expect(v.ok).toBe(true);
    expect(v.artifactDigest).toBe(ARTIFACT);
    expect(v.verdict.status).toBe('fail');
    // the same pack also verifies offline as a whole
    const pv = stella(['evidence', 'verify', '--offline', '--input', pack], { STELLA_TRUSTED_ROOTPACK: trustedNow });
    expect(pv.code, pv.err + pv.out).toBe(0);
  });

  it('the nightly schedule exists with its spec', async () => {
    const cfg = { ...h.ctx.cfg, schedules: { ...h.ctx.cfg.schedules, enabled: true } };
    await ensureSchedules(h.client, cfg, FEATURES, ['stella-replay-nightly']);
    const d = await h.client.schedule.getHandle('stella-replay-nightly').describe();
    expect(d.action.type).toBe('startWorkflow');
    expect((d.action as { workflowType: string }).workflowType).toBe('replayVerifyNightly');
    expect(JSON.stringify(d.spec)).toMatch(/3/);
    await h.client.schedule.getHandle('stella-replay-nightly').delete();
  });
});

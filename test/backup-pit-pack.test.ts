import { apiFor, bearer } from './support/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { inject } from 'vitest';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import { signEnvelope } from '../src/crypto/dsse';
import { exportRootPack, loadRootPack, writeRootPackFile } from '../src/crypto/rootpack';
import { readTar } from '../src/archive';
import { reforgePack } from './support/forge-pack';
import type { KeyStore } from '../src/crypto/keys';
import { openKeyStore } from '../src/core/keys';
import { createAnchor } from '../src/core/anchoring';
import { redact } from '../src/core/backup/diagnostics';
import type { RestoreOutcome } from '../workflows/backup';

let h: Harness;
let app: FastifyInstance;
const ART = sha256Digest(`registry.example/app@${randomBytes(4).toString('hex')}`);
const BASE = sha256Digest('registry.example/base@1');
const scratch = () => mkdtempSync(join(inject('scratch'), 'pack-'));
const auth = () => bearer(h, ['admin']);
const put = (data: string, kind: 'sbom' | 'attestation' | 'scan-report' | 'vex', subjects = [ART], parents: string[] = []) =>
  h.ctx.evidence.ingest({ tenant: 'default', data: Buffer.from(data), kind, mediaType: 'application/json', subjects, parents: parents.map((id) => ({ id })) });

/** The CLI in a separate process that can reach no server at all. */
function offlineCli(args: string[], extraEnv: Record<string, string> = {}) {
  const env = {
    PATH: process.env.PATH!,
    HOME: scratch(),
    STELLA_DATA_DIR: scratch(),
    STELLA_API_URL: 'http://127.0.0.1:9',
    DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none',
    STELLA_TEMPORAL_ADDRESS: '127.0.0.1:9',
    ...extraEnv,
  };
  return spawnSync(process.execPath, [resolve('bin/stella.mjs'), ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

/** The digest of the RootPack a pack carries inside it. */
async function packRootPackDigest(file: string): Promise<string> {
  for await (const e of readTar(file)) if (e.path === 'rootpack.json') return (await loadRootPack(await e.buffer())).digest;
  throw new Error(`${file} has no rootpack.json`);
}

async function waitRestore(id: string): Promise<RestoreOutcome> {
  return h.client.workflow.getHandle(id).result();
}

let baseSbom: string;
let sbom: string;
let att: string;
let report: string;
let a1: string;
let n1: number;

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
  app = await apiFor(h);
  baseSbom = (await put(`{"base":"sbom","r":"${randomBytes(4).toString('hex')}"}`, 'sbom', [BASE])).id;
  sbom = (await put(`{"bomFormat":"CycloneDX","r":"${randomBytes(4).toString('hex')}"}`, 'sbom', [ART], [baseSbom])).id;
  const signer = await h.ctx.keys.signer();
  const env = await signEnvelope(
    'application/vnd.in-toto+json',
    Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        // A valid statement: signed uploads are verified at ingest (src/core/evidence/signed.ts).
        subject: [{ name: 'app', digest: { sha256: ART.slice(7) } }],
        predicateType: 'https://slsa.dev/provenance/v1',
        predicate: {
          buildDefinition: { buildType: 'https://example/build', externalParameters: {} },
          runDetails: { builder: { id: 'https://example/builder' } },
        },
      }),
    ),
    [signer],
  );
  att = (await put(JSON.stringify(env), 'attestation', [ART], [sbom])).id;
  report = (await put(`{"scan":"UNIQUE-REPORT-BYTES-${randomBytes(4).toString('hex')}"}`, 'scan-report', [ART], [sbom])).id;
  const r1 = await createAnchor(h.ctx, { reason: 'test' });
  a1 = r1.anchor!.id;
  n1 = r1.anchor!.logSize;
});
afterAll(async () => {
  await app?.close();
  await h?.close();
});

describe('offline evidence packs', () => {
  it('exports a deterministic pack that verifies in a separate process with no servers; one changed byte fails naming the item', async () => {
    const dir = scratch();
    const get = async () => app.inject({ method: 'GET', url: `/evidence/export?digest=${ART}&includeDeps=true&format=gz`, headers: await auth() });
    const res = await get();
    expect(res.statusCode).toBe(200);
    expect(Number(res.headers['x-stella-pack-items'])).toBe(4); // 3 of the artifact + the base SBOM they depend on
    const again = await get();
    expect(again.rawPayload.equals(res.rawPayload)).toBe(true); // deterministic
    const pack = join(dir, 'evidence-pack.tar.gz');
    writeFileSync(pack, res.rawPayload);

    // The locker's RootPack, distributed out of band: the only one the verifier trusts.
    const trusted = join(dir, 'trusted-rootpack.json');
    await writeRootPackFile(trusted, await exportRootPack(h.ctx.keys));
    const trustedDigest = (await loadRootPack(readFileSync(trusted))).digest;
    const embeddedDigest = await packRootPackDigest(pack);

    // No trusted RootPack given or configured: refused, never the pack's own.
    const none = offlineCli(['evidence', 'verify', '--offline', '--input', pack]);
    expect(none.status).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/^stella: no trusted RootPack: pass --rootpack <file> or configure one .*STELLA_TRUSTED_ROOTPACK.*never trusted/);

    const ok = offlineCli(['evidence', 'verify', '--offline', '--input', pack, '--rootpack', trusted]);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('VERIFIED');
    expect(ok.stdout).toContain(`attestation ${att}: DSSE signature by`);
    expect(ok.stdout).toContain(`trusted RootPack ${trustedDigest} (--rootpack ${trusted}`);
    expect(ok.stdout).toContain(`embedded RootPack ${embeddedDigest} (not used)`);

    // JSON: which RootPack was trusted (source + fingerprint) and the embedded one's fingerprint.
    const js = offlineCli(['evidence', 'verify', '--offline', '--input', pack, '--rootpack', trusted, '--format', 'json']);
    expect(js.status).toBe(0);
    const jv = JSON.parse(js.stdout);
    expect(jv).toMatchObject({
      ok: true,
      trustedRootPack: { source: '--rootpack', path: trusted, fingerprint: trustedDigest },
      embeddedRootPack: { fingerprint: embeddedDigest, keysTrusted: true, untrustedKeyIds: [] },
    });
    expect(jv).not.toHaveProperty('keySource');

    // The configured trust file: the environment variable, and `stella config set Verify:TrustedRootPack`.
    const viaEnv = offlineCli(['evidence', 'verify', '--offline', '--input', pack, '--format', 'json'], { STELLA_TRUSTED_ROOTPACK: trusted });
    expect(viaEnv.status, viaEnv.stderr).toBe(0);
    expect(JSON.parse(viaEnv.stdout).trustedRootPack).toMatchObject({ source: 'STELLA_TRUSTED_ROOTPACK', path: trusted, fingerprint: trustedDigest });
    const dataDir = scratch();
    const set = offlineCli(['config', 'set', 'Verify:TrustedRootPack', trusted], { STELLA_DATA_DIR: dataDir });
    expect(set.status, set.stderr).toBe(0);
    const viaConfig = offlineCli(['evidence', 'verify', '--offline', '--input', pack], { STELLA_DATA_DIR: dataDir });
    expect(viaConfig.status, viaConfig.stderr).toBe(0);
    expect(viaConfig.stdout).toContain(`trusted RootPack ${trustedDigest} (STELLA_TRUSTED_ROOTPACK ${trusted}`);

    // A configured trust file that is not there: usage error naming it, nothing verified.
    const gone = offlineCli(['evidence', 'verify', '--offline', '--input', pack], { STELLA_TRUSTED_ROOTPACK: join(dir, 'nope.json') });
    expect(gone.status).toBe(2);
    expect(gone.stderr).toContain(`trusted RootPack ${join(dir, 'nope.json')} (from STELLA_TRUSTED_ROOTPACK): no such file`);

    // A foreign key set fails, whichever way it is given.
    const other = await openKeyStore(join(dir, 'other-keys'));
    const foreign = join(dir, 'foreign.json');
    await writeRootPackFile(foreign, await exportRootPack(other as KeyStore));
    const bad = offlineCli(['evidence', 'verify', '--offline', '--input', pack, '--rootpack', foreign]);
    expect(bad.status).toBe(4);
    expect(bad.stdout).toContain('anchor.json');
    // --rootpack wins over the configured file.
    expect(offlineCli(['evidence', 'verify', '--offline', '--input', pack, '--rootpack', foreign], { STELLA_TRUSTED_ROOTPACK: trusted }).status).toBe(4);

    // A re-forged pack: the scan report changed, everything re-signed with a fresh key whose RootPack is embedded.
    const forged = join(dir, 'forged.tar.gz');
    const forger = await reforgePack(pack, forged, (b) =>
      b.includes('UNIQUE-REPORT-BYTES') ? Buffer.from(b.toString('utf8').replace('UNIQUE-REPORT-BYTES', 'FORGED-REPORT-BYTES')) : b,
    );
    // It is internally consistent: trusting its own RootPack (what the old default did) it verifies.
    const selfTrust = offlineCli(['evidence', 'verify', '--offline', '--input', forged, '--rootpack', forger.rootpackFile]);
    expect(selfTrust.status, selfTrust.stdout + selfTrust.stderr).toBe(0);
    // Without a trusted RootPack it is refused; against the trusted one it fails on the anchor key.
    expect(offlineCli(['evidence', 'verify', '--offline', '--input', forged]).status).toBe(2);
    const fj = offlineCli(['evidence', 'verify', '--offline', '--input', forged, '--rootpack', trusted, '--format', 'json']);
    expect(fj.status).toBe(4);
    const fv = JSON.parse(fj.stdout);
    expect(fv.ok).toBe(false);
    expect(fv.problems[0]).toMatchObject({ path: 'anchor.json', reason: expect.stringContaining('is not a trusted signing key in the trusted RootPack') });
    expect(fv.trustedRootPack.fingerprint).toBe(trustedDigest);
    expect(fv.embeddedRootPack).toMatchObject({
      fingerprint: forger.rootpack.digest,
      keysTrusted: false,
      untrustedKeyIds: forger.rootpack.keys.map((k) => k.kid),
    });
    const ft = offlineCli(['evidence', 'verify', '--offline', '--input', forged], { STELLA_TRUSTED_ROOTPACK: trusted });
    expect(ft.status).toBe(4);
    expect(ft.stdout).toContain('FAILED');
    expect(ft.stdout).toContain('anchor.json: anchor does not verify');
    expect(ft.stdout).toContain(`keys NOT in the trusted RootPack: ${forger.rootpack.keys[0]!.kid}`);

    // One changed byte inside the scan report's bytes.
    const tar = gunzipSync(res.rawPayload);
    const at = tar.indexOf('UNIQUE-REPORT-BYTES');
    expect(at).toBeGreaterThan(0);
    tar[at] = tar[at]! ^ 0x20;
    const tampered = join(dir, 'tampered.tar.gz');
    writeFileSync(tampered, gzipSync(tar));
    const t = offlineCli(['evidence', 'verify', '--offline', '--input', tampered, '--rootpack', trusted]);
    expect(t.status).toBe(4);
    expect(t.stdout).toContain('FAILED');
    expect(t.stdout).toContain(report);
    expect(t.stdout).not.toContain(sbom);
  }, 90_000);

  it('refuses a pack with a path-traversal entry', async () => {
    const { buildTar, gzipBuffer } = await import('../src/archive');
    // buildTar refuses unsafe names itself, so forge the header by hand: rename a safe entry.
    const tar = Buffer.from(buildTar([{ path: 'aaaaaaaaaaaa', data: Buffer.from('x') } as never]));
    tar.write('../../evil\0\0', 0, 'latin1');
    // fix the header checksum
    tar.fill(' ', 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += tar[i]!;
    tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const f = join(scratch(), 'evil.tar.gz');
    writeFileSync(f, await gzipBuffer(tar));
    const r = offlineCli(['evidence', 'verify', '--offline', '--input', f]);
    expect(r.status).toBe(4);
    expect(r.stderr + r.stdout).toMatch(/unsafe|outside|\.\./i);
  }, 30_000);
});

describe('point-in-time restore to an anchor (DR-002)', () => {
  it('quarantines items after the anchor, archives later anchors, and verify --to-anchor passes', async () => {
    const later = [];
    for (let i = 0; i < 5; i++) later.push((await put(`{"later":${i},"r":"${randomBytes(4).toString('hex')}"}`, 'scan-report')).id);
    const r2 = await createAnchor(h.ctx, { reason: 'test' });
    expect(r2.anchor!.logSize).toBe(n1 + 5);

    const start = await app.inject({ method: 'POST', url: '/evidence/restore', headers: await auth(), payload: { toAnchor: a1.slice(0, 12) } });
    expect(start.statusCode).toBe(202);
    const out = await waitRestore(start.json().restoreId);
    expect(out.outcome).toBe('passed');
    expect(out.pointInTime).toMatchObject({ anchorId: a1, logSize: n1, quarantined: 5, anchorsArchived: 1 });
    expect(out.verify).toMatchObject({ kind: 'verify-workflow', status: 'passed', checked: n1, failed: 0 });
    // The status route answers with the same outcome, through its response contract.
    const st = await app.inject({ method: 'GET', url: `/evidence/restore/${out.restoreId}`, headers: await auth() });
    expect(st.statusCode).toBe(200);
    expect(st.json()).toMatchObject({ status: 'COMPLETED', running: false, error: null, result: { outcome: 'passed', pointInTime: { anchorId: a1 } } });

    const states = await h.ctx.db.query(`SELECT i.id, i.state, l.seq FROM evidence_items i JOIN evidence_log l ON l.item_id = i.id ORDER BY l.seq`);
    for (const r of states.rows) expect(r.state).toBe(Number(r.seq) >= n1 ? 'quarantined' : 'present');
    expect(
      states.rows
        .filter((r) => r.state === 'quarantined')
        .map((r) => r.id)
        .sort(),
    ).toEqual([...later].sort());
    // never deleted: rows, log leaves and blobs are all still there
    for (const id of later) expect((await h.ctx.blobs.primary.hash(id))?.actual).toBe(id);
    const anchors = await h.ctx.db.query('SELECT id, status FROM anchors ORDER BY seq');
    expect(anchors.rows.map((r) => r.status)).toEqual(['active', 'archived']);
    const audits = await h.ctx.db.query(
      `SELECT action, target FROM audit_log WHERE action IN ('evidence.state.quarantined','anchor.archived','evidence.restore.to-anchor')`,
    );
    expect(
      audits.rows
        .filter((r) => r.action === 'evidence.state.quarantined')
        .map((r) => r.target)
        .sort(),
    ).toEqual([...later].sort());
    expect(audits.rows.some((r) => r.action === 'anchor.archived' && r.target === r2.anchor!.id)).toBe(true);

    // stella evidence verify --mode full --to-anchor <id>
    const v = await app.inject({ method: 'POST', url: '/evidence/verify', headers: await auth(), payload: { mode: 'full', toAnchor: a1 } });
    expect(v.statusCode).toBe(202);
    const vr = await h.client.workflow.getHandle(v.json().runId).result();
    expect(vr).toMatchObject({ status: 'passed', failed: 0, toAnchor: a1, total: n1 });

    // A pack exported now uses the live anchor and leaves the quarantined items out.
    const res = await app.inject({ method: 'GET', url: `/evidence/export?digest=${ART}&format=tar`, headers: await auth() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-stella-anchor']).toBe(a1);
  }, 90_000);
});

describe('diagnostics bundle', () => {
  it('carries index status, storage, anchors, integrity and the audit log, and no secrets', async () => {
    const res = await app.inject({ method: 'GET', url: '/evidence/diagnostics', headers: await auth() });
    expect(res.statusCode).toBe(200);
    const d = res.json() as { files: Record<string, string> };
    expect(Object.keys(d.files).sort()).toEqual([
      'anchors.json',
      'audit-log.jsonl',
      'environment.json',
      'index-status.json',
      'integrity.json',
      'operations.json',
      'storage-stats.json',
    ]);
    const all = Object.values(d.files).join('\n');
    expect(all).not.toMatch(/"d"\s*:/);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{8,}\.eyJ/);
    expect(JSON.parse(d.files['anchors.json']!).anchors.length).toBeGreaterThan(0);
    expect(d.files['audit-log.jsonl']).toContain('evidence.restore.to-anchor');
    expect(JSON.parse(d.files['index-status.json']!).rows.items).toBeGreaterThan(0);
    // the redactor itself: URL passwords, key members and tokens
    const r = JSON.stringify(
      redact({
        url: 'postgres://stella:hunter2@db:5432/x',
        jwk: { kty: 'EC', d: 'secret', x: 'pub' },
        token: 'abc',
        note: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXh4eA',
      }),
    );
    expect(r).not.toContain('hunter2');
    expect(r).not.toMatch(/"d"\s*:\s*"secret"/);
    expect(r).not.toContain('eyJhbGci');
    expect(r).toContain('postgres://stella:****@db');
  });
});

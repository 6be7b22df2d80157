import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile, truncate, copyFile, mkdtemp, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { harness, type Harness } from './support/context';
import { buildOciFixture, realSystemLayer, type OciFixture } from './support/oci-fixture';
import { api, countEvidence, TENANT, token } from './support/scan';
import { KeyStore } from '../src/crypto/keys';
import { signStatement, makeStatement, subject, SLSA_PROVENANCE_V1, slsaProvenance } from '../src/crypto/intoto';
import { canonicalJson } from '../src/lib/canonical';
import { signAndStore, signerStatus, provenanceStatement } from '../src/core/attest/attest';
import { SCANNER } from '../src/core/scan/engine';

/** Bad input: a clear error, nothing stored half, nothing written outside the scratch directory. */
let h: Harness;
let app: FastifyInstance;
let auth: Record<string, string>;
const fixtures: OciFixture[] = [];

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
  app = await api(h);
  auth = { authorization: `Bearer ${await token(h)}` };
});
afterAll(async () => {
  await app?.close();
  for (const f of fixtures) await f.cleanup();
  await h?.close();
});

const call = async (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
  const r = await app.inject({ method, url, headers: { ...auth, ...headers }, ...(payload !== undefined ? { payload: payload as never } : {}) });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : null };
};
const fixture = async (opts: Parameters<typeof buildOciFixture>[0]) => {
  const f = await buildOciFixture(opts);
  fixtures.push(f);
  return f;
};
/** Start a scan of a path and return the workflow's failure (message + type). */
async function scanFails(image: string): Promise<{ message: string; type: string }> {
  const s = await call('POST', '/scans', { image });
  expect(s.status, JSON.stringify(s.body)).toBe(202);
  try {
    await h.client.workflow.getHandle(s.body.workflowId, s.body.runId).result();
  } catch (e) {
    const c = (e as { cause: { message: string; type: string } }).cause;
    return { message: c.message, type: c.type };
  }
  throw new Error('scan unexpectedly succeeded');
}

describe('bad input', () => {
  it('unknown image: 404 with a hint, nothing stored', async () => {
    const before = await countEvidence(h);
    const r = await call('POST', '/scans', { image: 'no-such-image:1' });
    expect(r.status).toBe(404);
    expect(r.body.detail).toContain('unknown image');
    const d = await call('POST', '/scans', { image: `sha256:${'ab'.repeat(32)}` });
    expect(d.status).toBe(404);
    expect(d.body.detail).toContain('stella image register');
    expect(await countEvidence(h)).toEqual(before);
  });

  it('truncated tar: refused at registration and at scan time, nothing stored', async () => {
    const f = await fixture({ ref: 'trunc:1', layers: [await realSystemLayer()] });
    const cut = join(f.root, 'truncated.tar');
    await copyFile(f.tarPath, cut);
    await truncate(cut, Math.floor((await readFile(cut)).length / 2));
    const before = await countEvidence(h);
    const reg = await call('POST', '/images', { name: 'trunc:1', path: cut });
    expect([400, 422]).toContain(reg.status);
    expect(reg.body.detail).toMatch(/truncat|not a|missing|does not/i);
    const s = await call('POST', '/scans', { image: cut });
    expect([400, 404, 422]).toContain(s.status);
    expect(await countEvidence(h)).toEqual(before);
  });

  it('a layer blob truncated after registration: the scan fails INTEGRITY, no SBOM stored', async () => {
    const f = await fixture({ ref: 'layer:1', layers: [await realSystemLayer()], archives: false });
    expect((await call('POST', '/images', { name: 'layer:1', path: f.dir })).status).toBe(200);
    const blob = join(f.dir, 'blobs', 'sha256', f.layerDigests[0]!.slice(7));
    await truncate(blob, 1000);
    const before = await countEvidence(h);
    const fail = await scanFails('layer:1');
    expect(fail.type).toBe('INTEGRITY');
    expect(fail.message).toMatch(/truncated|digest mismatch|unexpected end/i);
    expect(await countEvidence(h)).toEqual(before);
    const run = await h.ctx.db.query(`SELECT status, error, sbom_id FROM scan_runs WHERE artifact_digest=$1`, [f.digest]);
    expect(run.rows).toEqual([{ status: 'failed', error: expect.stringMatching(/truncated|digest|unexpected end/i), sbom_id: null }]);
  });

  it('path traversal in a layer (.., absolute, hard link out of root): refused, nothing stored, nothing written outside', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'stella-trav-'));
    const cases: { name: string; entries: any[] }[] = [
      { name: 'dotdot', entries: [{ path: '../../stella-escape.txt', content: 'pwned' }] },
      { name: 'absolute', entries: [{ path: '/tmp/stella-escape-abs.txt', content: 'pwned' }] },
      { name: 'hardlink', entries: [{ path: 'etc/passwd-link', type: 'hardlink', target: '../../../etc/passwd' }] },
    ];
    for (const c of cases) {
      const f = await fixture({
        ref: `trav-${c.name}`,
        layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID=12\n' }], c.entries],
        parent,
        archives: false,
      });
      const before = await countEvidence(h);
      const fail = await scanFails(f.dir);
      expect(fail.type, `${c.name}: ${fail.message}`).toBe('BAD_INPUT');
      expect(fail.message).toContain('refusing layer entry');
      expect(await countEvidence(h)).toEqual(before);
    }
    // The scanner never extracts: no escape file next to, above or inside the scratch dirs.
    expect(existsSync(join(dirname(parent), 'stella-escape.txt'))).toBe(false);
    expect(existsSync('/tmp/stella-escape-abs.txt')).toBe(false);
    expect(readdirSync(parent).every((n) => n.startsWith('stella-oci-'))).toBe(true);
  });

  it('manifest that does not match its digest: refused with INTEGRITY, nothing stored', async () => {
    const f = await fixture({ ref: 'mani:1', layers: [await realSystemLayer()], archives: false });
    const mpath = join(f.dir, 'blobs', 'sha256', f.digest.slice(7));
    const m = JSON.parse(await readFile(mpath, 'utf8'));
    m.annotations = { tampered: 'yes' };
    await writeFile(mpath, JSON.stringify(m));
    const before = await countEvidence(h);
    const reg = await call('POST', '/images', { name: 'mani:1', path: f.dir });
    expect(reg.status).toBe(422);
    expect(reg.body.detail).toContain('digest mismatch');
    const s = await call('POST', '/scans', { image: f.dir });
    expect(s.status).toBe(422);
    expect(await countEvidence(h)).toEqual(before);
  });

  it('attestation import: bad signature and untrusted key refused (nothing stored); a trusted one is stored', async () => {
    const digest = `sha256:${'cd'.repeat(32)}`;
    const st = makeStatement(
      [subject('x', digest)],
      SLSA_PROVENANCE_V1,
      slsaProvenance({ buildType: 'https://example/bt', externalParameters: {}, builderId: 'https://example/builder' }),
    );
    const own = await h.ctx.keys.signer((await h.ctx.keys.active('signing')).kid);
    const good = await signStatement(st, [own]);
    const before = await countEvidence(h);

    const bad = structuredClone(good);
    const sig = Buffer.from(bad.signatures[0]!.sig, 'base64');
    sig[sig.length - 3] ^= 0xff;
    bad.signatures[0]!.sig = sig.toString('base64');
    const r1 = await call('POST', '/attestations/import', Buffer.from(JSON.stringify(bad)), { 'content-type': 'application/json' });
    expect(r1.status).toBe(422);
    expect(r1.body.detail).toContain('no valid signature by a trusted key');

    const stranger = await KeyStore.open(await mkdtemp(join(tmpdir(), 'stella-keys-')));
    await stranger.generate({ alg: 'EdDSA', purpose: 'signing' });
    const untrusted = await signStatement(st, [await stranger.signer()]);
    const r2 = await call('POST', '/attestations/import', Buffer.from(JSON.stringify(untrusted)), { 'content-type': 'application/json' });
    expect(r2.status).toBe(422);
    expect(r2.body.detail).toContain('unknown key');

    const r3 = await call('POST', '/attestations/import', Buffer.from('{"payloadType":1}'), { 'content-type': 'application/json' });
    expect(r3.status).toBe(400);
    expect(await countEvidence(h)).toEqual(before);

    const ok = await call('POST', '/attestations/import', Buffer.from(canonicalJson(good)), { 'content-type': 'application/json' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toMatchObject({ created: true, subject: digest, signer: own.keyid });
    expect(await countEvidence(h)).toEqual({ ...before, attestation: (before.attestation ?? 0) + 1 });

    // A stored attestation whose key is later retired: valid (signed inside its window), not trusted now.
    const rotated = await h.ctx.keys.rotate({ purpose: 'signing', alg: 'EdDSA' });
    expect(rotated.retired.map((k) => k.kid)).toContain(own.keyid);
    const list = await call('GET', `/attestations?subject=${digest}`);
    expect(list.body.items[0]).toMatchObject({ valid: true, trustedNow: false, signer: own.keyid });
    const v = await call('GET', `/attestations/${ok.body.id}`);
    expect(v.body.signatures[0].reasonNow).toContain('after key notAfter');

    // RootPack round trip: export own keys, import as trusted (creates the trust file), show.
    const own2 = await call('GET', '/rootpack?scope=own');
    const imp = await call('POST', '/rootpack', Buffer.from(JSON.stringify(own2.body)), { 'content-type': 'application/json' });
    expect(imp.status, JSON.stringify(imp.body)).toBe(200);
    expect(imp.body.added.length).toBe(own2.body.keys.length);
    const shown = await call('GET', '/rootpack');
    expect(shown.body.keys.find((k: any) => k.kid === own.keyid)).toMatchObject({ status: 'retired' });
    const tampered = { ...own2.body, createdAt: new Date(0).toISOString() };
    expect((await call('POST', '/rootpack', Buffer.from(JSON.stringify(tampered)), { 'content-type': 'application/json' })).status).toBe(422);
  });

  it('a signing failure is recorded and shown by attest status; nothing is stored', async () => {
    const facts = {
      scanId: 's1',
      artifactDigest: `sha256:${'ef'.repeat(32)}`,
      imageRef: null,
      trigger: 'manual',
      requestedBy: 't',
      scanTime: new Date().toISOString(),
      scanner: SCANNER,
      feed: null,
      sbomId: null,
      reportId: null,
    };
    const keysDir = join(h.ctx.keys.dir, 'keys');
    const hidden = `${keysDir}.hidden`;
    const before = await countEvidence(h);
    await rename(keysDir, hidden); // the key store becomes unreadable
    try {
      await expect(signAndStore(h.ctx, { tenant: TENANT, statement: provenanceStatement(facts), attests: [], actor: 't' })).rejects.toThrow(/signing failed/);
    } finally {
      await rename(hidden, keysDir);
    }
    expect(await countEvidence(h)).toEqual(before);
    const s = await signerStatus(h.ctx, TENANT);
    expect(s.failuresLast24h).toBe(1);
    expect(s.recentFailures[0]).toMatchObject({ subject: facts.artifactDigest, predicateType: SLSA_PROVENANCE_V1 });
    expect(s).toMatchObject({ healthy: true, canSign: true, inRootPack: true });
    const api = await call('GET', '/attestations/status');
    expect(api.body.recentFailures).toHaveLength(1);
  });
});

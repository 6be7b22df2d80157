import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveImage } from '../src/core/scan/catalogue';
import { runScan } from '../src/core/scan/engine';
import { isPinnedReference, isRegistryReference, registryImageSource } from '../src/core/scan/registry';
import { inventoryImage } from '../src/scanner/index';
import { scanWorkflowId } from '../src/temporal/names';
import { runStella, cliEnvFor } from './support/cli';
import { harness, type Harness } from './support/context';
import { buildOciFixture, dpkgStanza, realSystemLayer, type FixtureEntry, type OciFixture } from './support/oci-fixture';
import { pushFixture, startRegistry, type TestRegistry } from './support/registry';
import { api, caller, countEvidence, TENANT, token } from './support/scan';

/**
 * Scanning by registry reference (issue 14 item 2) against real registries: Debian's
 * docker-registry (plain, and htpasswd-protected), images pushed from OCI-layout fixtures with
 * skopeo, and a small proxy in front of the plain one that corrupts or withholds bytes.
 */
let h: Harness;
let app: FastifyInstance;
let auth: Record<string, string>;
let reg: TestRegistry;
let locked: TestRegistry;
let cacheDir: string;
const fixtures: OciFixture[] = [];
const proxies: http.Server[] = [];
const USER = { user: 'pusher', password: randomBytes(8).toString('hex') };

beforeAll(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'stella-layer-cache-'));
  h = await harness({ blob: 'fs', env: { STELLA_LAYER_CACHE_DIR: cacheDir } });
  app = await api(h);
  auth = { authorization: `Bearer ${await token(h)}` };
  [reg, locked] = await Promise.all([startRegistry(), startRegistry({ auth: USER })]);
}, 120_000);
afterAll(async () => {
  for (const p of proxies) p.close();
  await app?.close();
  await Promise.all([reg?.stop(), locked?.stop()]);
  for (const f of fixtures) await f.cleanup();
  await h?.close();
});

const call = (...a: Parameters<ReturnType<typeof caller>>) => caller(app, () => auth)(...a);

/** A fixture unique to this test run (its digest is new, so no stored inventory or layer cache entry applies). */
async function fixture(extra: FixtureEntry[] = [], opts: { real?: boolean } = {}): Promise<OciFixture> {
  const f = await buildOciFixture({
    ref: 'app',
    layers: [
      opts.real ? await realSystemLayer() : [{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }],
      [
        {
          path: 'var/lib/dpkg/status',
          content: [dpkgStanza({ name: 'libfixture', version: '1.2-3' }), dpkgStanza({ name: 'toolz', version: '4.0-1' })].join('\n'),
        },
        { path: 'etc/stella-test-id', content: randomBytes(16).toString('hex') },
        ...extra,
      ],
    ],
  });
  fixtures.push(f);
  return f;
}

const hexOf = (d: string) => d.slice('sha256:'.length);
const purls = (bom: { components: { purl?: string }[] }) =>
  bom.components
    .map((c) => c.purl)
    .filter(Boolean)
    .sort();

interface Upstream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}
type Tamper = (req: http.IncomingMessage, forward: () => Promise<Upstream>, res: http.ServerResponse) => Promise<boolean>;

/** A plain-HTTP proxy in front of a registry; `tamper` answers a request itself (returns true) or lets it through. */
async function proxy(target: TestRegistry, tamper: Tamper): Promise<string> {
  const forward = (req: http.IncomingMessage) => (): Promise<Upstream> =>
    new Promise((res, rej) => {
      const up = http.request(`${target.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => res({ status: r.statusCode ?? 502, headers: r.headers, body: Buffer.concat(chunks) }));
        r.on('error', rej);
      });
      up.on('error', rej);
      req.pipe(up);
    });
  const server = http.createServer(async (req, res) => {
    try {
      if (await tamper(req, forward(req), res)) return;
      const u = await forward(req)();
      const headers = { ...u.headers };
      // The proxy answers for the registry: its redirects and auth challenges stay as they are.
      res.writeHead(u.status, headers);
      res.end(req.method === 'HEAD' ? undefined : u.body);
    } catch (e) {
      res.writeHead(502).end(String(e));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxies.push(server);
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** POST /scans and wait for the workflow's failure (message and type). */
async function workflowFailure(body: Record<string, unknown>): Promise<{ message: string; type: string; workflowId: string; runId: string }> {
  const s = await call('POST', '/scans', body);
  expect(s.status, JSON.stringify(s.body)).toBe(202);
  try {
    await h.client.workflow.getHandle(s.body.workflowId, s.body.runId).result();
  } catch (e) {
    const c = (e as { cause: { message: string; type: string } }).cause;
    return { message: c.message, type: c.type, workflowId: s.body.workflowId, runId: s.body.runId };
  }
  throw new Error('scan unexpectedly succeeded');
}

/** How many times each activity type was started in a run (retries included). */
async function activityAttempts(workflowId: string, runId: string): Promise<Record<string, number>> {
  const hist = await h.client.workflow.getHandle(workflowId, runId).fetchHistory();
  const names = new Map<number, string>();
  const out: Record<string, number> = {};
  for (const e of hist.events ?? []) {
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched) names.set(Number(e.eventId), sched.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const n = names.get(Number(started.scheduledEventId)) ?? '?';
      out[n] = Math.max(out[n] ?? 0, started.attempt ?? 1);
    }
  }
  return out;
}

describe('which --image values are registry references (after the catalogue)', () => {
  const D = `sha256:${'ab'.repeat(32)}`;
  it.each([
    ['registry.example.com/team/app:1', true],
    ['127.0.0.1:5000/app', true],
    ['localhost/app:1', true],
    [`team/app@${D}`, true],
    [`alpine@${D}`, true],
    // Catalogue-style names, paths and bare digests keep their meaning.
    ['app:1', false],
    ['team/app:1', false],
    ['localhost:5000', false],
    ['/images/app.tar', false],
    ['./layout', false],
    [D, false],
  ])('%s → %s', (image, expected) => {
    expect(isRegistryReference(image)).toBe(expected);
  });
  it('only host/repo@sha256:… counts as pinned', () => {
    expect(isPinnedReference(`127.0.0.1:5000/app@${D}`)).toBe(true);
    expect(isPinnedReference('127.0.0.1:5000/app:1')).toBe(false);
    expect(isPinnedReference('/images/app.tar')).toBe(false);
  });
});

describe('scan image --image <registry ref>', () => {
  it('resolves the tag to its digest first, scans the pinned host/repo@digest streamed from the registry, and yields what the OCI layout yields', async () => {
    const fx = await fixture([], { real: true });
    const pushed = await pushFixture(reg.host, 'team/app:1', fx.dir);
    expect(pushed).toBe(fx.digest);
    const pinned = `${reg.host}/team/app@${fx.digest}`;

    const s = await call('POST', '/scans', { image: `${reg.host}/team/app:1`, insecureRegistry: true });
    expect(s.status, JSON.stringify(s.body)).toBe(202);
    // Same workflow id as any other request for this artifact: keyed by the digest.
    expect(s.body).toMatchObject({ workflowId: scanWorkflowId(TENANT, fx.digest), artifactDigest: fx.digest, imageRef: pinned, imagePath: pinned });
    // The workflow was started with the pinned reference, not the tag: a tag moving later changes nothing.
    const handle = h.client.workflow.getHandle(s.body.workflowId, s.body.runId);
    expect((await handle.describe()).memo).toMatchObject({ image: pinned });
    const result = (await handle.result()) as { phase: string; sbomId: string; reportId: string; attestationIds: string[]; replayManifest: string };
    expect(result.phase).toBe('done');
    expect(result.attestationIds).toHaveLength(3);
    expect(result.replayManifest).toMatch(/^sha256:/);

    // The SBOM lists exactly what a scan of the OCI layout lists.
    const sbom = JSON.parse((await h.ctx.evidence.read(TENANT, result.sbomId)).toString());
    const local = await runScan(fx.dir, { now: sbom.metadata.timestamp });
    expect(purls(sbom)).toEqual(purls(local.sbom));
    expect(purls(sbom).length).toBeGreaterThan(20);
    expect(await h.ctx.evidence.get(TENANT, result.sbomId)).toMatchObject({ kind: 'sbom', subjects: [fx.digest] });

    // The one-pass inventory from the registry equals the one from the layout, layer by layer.
    const [fromRegistry, fromLayout] = await Promise.all([inventoryImage(registryImageSource(h.ctx, pinned, { insecure: true })), inventoryImage(fx.dir)]);
    expect(fromRegistry.artifactDigest).toBe(fromLayout.artifactDigest);
    expect(fromRegistry.configDigest).toBe(fromLayout.configDigest);
    expect(fromRegistry.packages).toEqual(fromLayout.packages);
    expect(fromRegistry.layers).toEqual(fromLayout.layers);

    // The run record names the pinned reference (what a retry and replay re-open).
    const runs = await call('GET', `/scans?artifact=${fx.digest}`);
    expect(runs.body.items[0]).toMatchObject({ status: 'completed', imagePath: pinned, imageRef: pinned });

    // The layers went through the content-addressed layer cache (STELLA_LAYER_CACHE_DIR).
    const cached = readdirSync(join(cacheDir, 'sha256'));
    for (const d of fx.layerDigests) expect(cached).toContain(hexOf(d));

    // The tag now points elsewhere; a scan by digest still finds the run's pinned reference.
    const other = await fixture();
    await pushFixture(reg.host, 'team/app:1', other.dir);
    const again = await call('POST', '/scans', { image: fx.digest, insecureRegistry: true });
    expect(again.status, JSON.stringify(again.body)).toBe(202);
    expect(again.body).toMatchObject({ artifactDigest: fx.digest, imagePath: pinned });
    expect(((await h.client.workflow.getHandle(again.body.workflowId, again.body.runId).result()) as { phase: string }).phase).toBe('reused');
  });

  it('a multi-platform index: --platform selects the image, a platform the index lacks is a 404 naming the reference', async () => {
    const f = await buildOciFixture({
      images: [
        { ref: 'amd', architecture: 'amd64', layers: [[{ path: 'etc/id', content: randomBytes(8).toString('hex') }]] },
        { ref: 'arm', architecture: 'arm64', layers: [[{ path: 'etc/id', content: randomBytes(8).toString('hex') }]] },
      ],
    });
    fixtures.push(f);
    // Nest the two manifests in an image index and name it in the layout, so skopeo --all pushes the index.
    const [amd, arm] = f.images as [(typeof f.images)[0], (typeof f.images)[0]];
    const idx = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: amd.digest,
            size: amd.manifestSize,
            platform: { os: 'linux', architecture: 'amd64' },
          },
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: arm.digest,
            size: arm.manifestSize,
            platform: { os: 'linux', architecture: 'arm64' },
          },
        ],
      }),
    );
    const idxDigest = `sha256:${createHash('sha256').update(idx).digest('hex')}`;
    await writeFile(join(f.dir, 'blobs', 'sha256', hexOf(idxDigest)), idx);
    await writeFile(
      join(f.dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.index.v1+json',
            digest: idxDigest,
            size: idx.length,
            annotations: { 'org.opencontainers.image.ref.name': 'multi' },
          },
        ],
      }),
    );
    expect(await pushFixture(reg.host, 'team/multi:1', f.dir, { layoutRef: 'multi', all: true })).toBe(idxDigest);

    const ref = `${reg.host}/team/multi:1`;
    const r = await resolveImage(h.ctx, TENANT, ref, { platform: 'linux/arm64', insecure: true });
    expect(r).toMatchObject({ digest: arm.digest, path: `${reg.host}/team/multi@${arm.digest}`, source: 'registry' });

    const before = await countEvidence(h);
    const miss = await call('POST', '/scans', { image: ref, platform: 'linux/s390x', insecureRegistry: true });
    expect(miss.status, JSON.stringify(miss.body)).toBe(404);
    expect(miss.body.detail).toContain(`${reg.host}/team/multi`);
    expect(miss.body.detail).toContain('s390x');
    const bad = await call('POST', '/scans', { image: ref, platform: 'not a platform', insecureRegistry: true });
    expect(bad.status).toBe(400);
    expect(await countEvidence(h)).toEqual(before);
  });
});

describe('bad input up front: a 4xx naming the reference, nothing stored', () => {
  it('unknown host, plain HTTP not allowed, 401 without credentials; credentials from the auth file work', async () => {
    const fx = await fixture();
    await pushFixture(locked.host, 'team/locked:1', fx.dir, { creds: USER });
    const before = await countEvidence(h);
    const runsBefore = (await call('GET', '/scans')).body.items.length;

    const unknown = await call('POST', '/scans', { image: 'registry.stella-test.invalid/team/app:1' });
    expect(unknown.status, JSON.stringify(unknown.body)).toBeGreaterThanOrEqual(400);
    expect(unknown.status).toBeLessThan(500);
    expect(unknown.body.detail).toContain('registry.stella-test.invalid/team/app:1');

    const noInsecure = await call('POST', '/scans', { image: `${reg.host}/team/app:1` });
    expect(noInsecure.status, JSON.stringify(noInsecure.body)).toBe(400);
    expect(noInsecure.body.detail).toContain(`${reg.host}/team/app:1`);

    const ref = `${locked.host}/team/locked:1`;
    const denied = await call('POST', '/scans', { image: ref, insecureRegistry: true });
    expect(denied.status, JSON.stringify(denied.body)).toBe(403);
    expect(denied.body.detail).toContain(ref);

    expect(await countEvidence(h)).toEqual(before);
    expect((await call('GET', '/scans')).body.items.length).toBe(runsBefore);

    // With a docker config.json holding the credentials (STELLA_REGISTRY_AUTH_FILE), the same reference resolves and reads.
    const authFile = join(mkdtempSync(join(tmpdir(), 'stella-auth-')), 'config.json');
    await writeFile(authFile, JSON.stringify({ auths: { [locked.host]: { auth: Buffer.from(`${USER.user}:${USER.password}`).toString('base64') } } }));
    const withCreds = { ...h.ctx, cfg: { ...h.ctx.cfg, registry: { ...h.ctx.cfg.registry, authFile, layerCacheDir: undefined } } };
    const r = await resolveImage(withCreds, TENANT, ref, { insecure: true });
    expect(r.digest).toBe(fx.digest);
    const inv = await inventoryImage(registryImageSource(withCreds, r.path, { insecure: true }));
    expect(inv.packages.map((p) => p.name).sort()).toEqual(['libfixture', 'toolz']);
  });

  it('a manifest whose bytes do not match the digest asked for (422), a huge manifest (413)', async () => {
    const fx = await fixture();
    await pushFixture(reg.host, 'team/app:tampered', fx.dir);
    const host = await proxy(reg, async (req, forward, res) => {
      if (!/\/manifests\//.test(req.url ?? '')) return false;
      if (req.url!.startsWith('/v2/team/huge/')) {
        const body = Buffer.alloc(6 << 20, 0x20);
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length });
        res.end(req.method === 'HEAD' ? undefined : body);
        return true;
      }
      // Same JSON, one byte more: a different digest than the one asked for.
      const u = await forward();
      const body = u.status === 200 ? Buffer.concat([u.body, Buffer.from('\n')]) : u.body;
      res.writeHead(u.status, { ...u.headers, 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    });
    const before = await countEvidence(h);
    const tampered = `${host}/team/app@${fx.digest}`;
    const mismatch = await call('POST', '/scans', { image: tampered, insecureRegistry: true });
    expect(mismatch.status, JSON.stringify(mismatch.body)).toBe(422);
    expect(mismatch.body.detail).toContain(tampered);

    const huge = await call('POST', '/scans', { image: `${host}/team/huge:1`, insecureRegistry: true });
    expect(huge.status, JSON.stringify(huge.body)).toBe(413);
    expect(huge.body.detail).toContain(`${host}/team/huge:1`);
    expect(await countEvidence(h)).toEqual(before);
  });
});

describe('registry failures inside the workflow', () => {
  it('a layer that fails its digest mid-stream fails the scan non-retryably (INTEGRITY), names the reference, stores nothing', async () => {
    // An uncompressed layer with a large file: the flipped byte lands in file data, so only the digest check can notice.
    const fx = await fixture([{ path: 'opt/filler.bin', content: Buffer.alloc(256 * 1024, 0x61) }]);
    await pushFixture(reg.host, 'team/corrupt:1', fx.dir);
    const target = fx.layerDigests[1]!;
    const host = await proxy(reg, async (req, forward, res) => {
      if (req.method !== 'GET' || !req.url?.includes(`/blobs/${target}`)) return false;
      const u = await forward();
      const body = Buffer.from(u.body);
      if (u.status === 200) body[Math.floor(body.length / 2)] ^= 0x01;
      res.writeHead(u.status, u.headers);
      res.end(body);
      return true;
    });
    const before = await countEvidence(h);
    const f = await workflowFailure({ image: `${host}/team/corrupt:1`, insecureRegistry: true });
    expect(f.type).toBe('INTEGRITY');
    expect(f.message).toContain(`${host}/team/corrupt@${fx.digest}`);
    expect(f.message).toMatch(/digest/i);
    expect((await activityAttempts(f.workflowId, f.runId)).scanSbom).toBe(1);
    expect(await countEvidence(h)).toEqual(before);
    // The bad bytes were not kept in the layer cache.
    expect(readdirSync(join(cacheDir, 'sha256'))).not.toContain(hexOf(target));
  });

  it('a registry that is unavailable for a while is retried (UNAVAILABLE), and the scan then completes', async () => {
    const fx = await fixture();
    await pushFixture(reg.host, 'team/flaky:1', fx.dir);
    let refused = 0;
    const host = await proxy(reg, async (req, _forward, res) => {
      if (req.method !== 'GET' || !req.url?.includes('/blobs/') || refused >= 1) return false;
      refused++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('maintenance');
      return true;
    });
    const s = await call('POST', '/scans', { image: `${host}/team/flaky:1`, insecureRegistry: true, sbomOnly: true });
    expect(s.status, JSON.stringify(s.body)).toBe(202);
    const result = (await h.client.workflow.getHandle(s.body.workflowId, s.body.runId).result()) as { phase: string; sbomId: string };
    expect(result.phase).toBe('done');
    expect(refused).toBe(1);
    // Temporal retried the activity (the failure was classified retryable), not the test.
    expect((await activityAttempts(s.body.workflowId, s.body.runId)).scanSbom).toBeGreaterThanOrEqual(2);
    expect(await h.ctx.evidence.get(TENANT, result.sbomId)).toMatchObject({ kind: 'sbom', subjects: [fx.digest] });
  });
});

describe('stella scan image (CLI) with a registry reference', () => {
  it('--insecure-registry scans by reference; without it, or with a bad --platform, a one-line reason and a usage exit', async () => {
    const cliApp = await api(h);
    try {
      const env = await cliEnvFor(h, cliApp);
      const fx = await fixture();
      await pushFixture(reg.host, 'team/cli:1', fx.dir);
      const ref = `${reg.host}/team/cli:1`;
      const ok = await runStella(env, 'scan', 'image', '--image', ref, '--insecure-registry', '--sbom-only', '--format', 'json');
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({
        status: 'COMPLETED',
        progress: { artifactDigest: fx.digest, imageRef: `${reg.host}/team/cli@${fx.digest}` },
      });

      const plain = await runStella(env, 'scan', 'image', '--image', ref, '--sbom-only');
      expect(plain.code).toBe(2);
      expect(plain.stderr).toContain(ref);
      expect(plain.stderr.trim().split('\n')).toHaveLength(1);

      const platform = await runStella(env, 'scan', 'image', '--image', ref, '--insecure-registry', '--platform', 'x');
      expect(platform.code).toBe(2);
      expect(platform.stderr).toMatch(/platform/);
    } finally {
      await cliApp.close();
    }
  });
});

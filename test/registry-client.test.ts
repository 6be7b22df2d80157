import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest, sha256Stream } from '../src/lib/hash';
import {
  createLayerCache,
  createRegistryClient,
  defaultPlatform,
  MEDIA_TYPES,
  openRegistryImage,
  parseChallenge,
  parseReference,
  RegistryError,
  type RegistryClientOptions,
} from '../src/registry/index';
import { readImageFilesystem } from '../src/scanner/layers';
import { buildOciFixture, type OciFixture } from './support/oci-fixture';
import { freePort, pushFixture, startReferrersRegistry, startRegistry, type TestRegistry } from './support/registry';

/**
 * The registry client against real registries: Debian's docker-registry (distribution 2.8.2;
 * anonymous and htpasswd) and go-containerregistry's registry (OCI 1.1 referrers API). Faults a
 * real registry will not produce (altered bytes, a huge manifest, 403, a bearer token service)
 * come from a small HTTP proxy in front of the real registry.
 */

async function expectRegistryError(p: Promise<unknown>, code: string, ...fragments: string[]): Promise<RegistryError> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected RegistryError ${code}`).toBeInstanceOf(RegistryError);
  const re = err as RegistryError;
  expect(re.code, re.message).toBe(code);
  for (const f of fragments) expect(re.message).toContain(f);
  return re;
}

interface Proxy {
  host: string;
  url: string;
  /** Return true when the request was answered here. */
  intercept?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean | Promise<boolean>;
  /** Rewrite an upstream answer's body before it is sent on. */
  rewrite?: (path: string, body: Buffer, headers: Headers) => Buffer;
  requests: string[];
  stop(): Promise<void>;
}

/** An HTTP proxy in front of a real registry, with hooks to answer or alter requests. */
async function startProxy(upstream: string): Promise<Proxy> {
  const port = await freePort();
  const proxy: Proxy = { host: `127.0.0.1:${port}`, url: `http://127.0.0.1:${port}`, requests: [], stop: async () => {} };
  const server: Server = createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      proxy.requests.push(`${req.method} ${req.url}`);
      if (proxy.intercept && (await proxy.intercept(req, res, body))) return;
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'authorization', 'connection'].includes(k)) headers[k] = v;
      const up = await fetch(upstream + req.url, {
        method: req.method,
        headers,
        redirect: 'manual',
        ...(body.length && req.method !== 'GET' && req.method !== 'HEAD' ? { body } : {}),
      });
      let out: Buffer = Buffer.from(await up.arrayBuffer());
      if (proxy.rewrite && req.method === 'GET') out = proxy.rewrite(req.url ?? '', out, up.headers);
      const h: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (!['content-length', 'transfer-encoding', 'connection', 'content-encoding'].includes(k)) h[k] = v;
      });
      if (req.method === 'HEAD') h['content-length'] = up.headers.get('content-length') ?? '0';
      else h['content-length'] = String(out.length);
      res.writeHead(up.status, h);
      res.end(req.method === 'HEAD' ? undefined : out);
    } catch (e) {
      res.writeHead(502);
      res.end(String(e));
    }
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  proxy.stop = () => new Promise<void>((r) => server.close(() => r()));
  return proxy;
}

/** Incompressible bytes, deterministic. */
function noise(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(seed).digest();
  for (let i = 0; i < n; i += 32) {
    block.copy(out, i);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

let reg: TestRegistry;
let fx: OciFixture;
let multi: OciFixture;
let tmp: string;
const insecure = (...r: Array<{ host: string }>): RegistryClientOptions => ({ insecureRegistries: r.map((x) => x.host), authFile: join(tmp, 'no-auth.json') });

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'stella-regtest-'));
  await writeFile(join(tmp, 'no-auth.json'), '{"auths":{}}');
  reg = await startRegistry();
  fx = await buildOciFixture({
    archives: false,
    layers: [
      [
        { path: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.19.1\n' },
        { path: 'srv/blob.bin', content: noise(512 << 10, 'layer-one') },
      ],
      { gzip: false, entries: [{ path: 'srv/second.bin', content: noise(256 << 10, 'layer-two') }] },
    ],
  });
  multi = await buildOciFixture({
    archives: false,
    images: [
      { ref: 'amd', architecture: 'amd64', layers: [[{ path: 'etc/arch', content: 'amd64\n' }]] },
      { ref: 'arm', architecture: 'arm64', layers: [[{ path: 'etc/arch', content: 'arm64\n' }]] },
    ],
  });
  await pushFixture(reg.host, 'app:1.0', fx.dir);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await fx?.cleanup();
  await multi?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('parseReference', () => {
  it('applies the docker.io and library/ defaults and keeps host:port, tag and digest', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseReference('alpine').toString()).toBe('registry-1.docker.io/library/alpine');
    expect(parseReference('docker.io/team/app:1').toString()).toBe('registry-1.docker.io/team/app:1');
    const r = parseReference(`localhost:5000/team/app:v1.2@${d}`);
    expect([r.registry, r.repository, r.tag, r.digest]).toEqual(['localhost:5000', 'team/app', 'v1.2', d]);
    expect(parseReference('reg.example.com/a/b/c').repository).toBe('a/b/c');
    expect(parseReference('team/app').registry).toBe('registry-1.docker.io');
  });

  it.each([
    ['', 'empty'],
    ['https://reg.example.com/app', 'no scheme'],
    ['reg.example.com/App', 'lowercase'],
    ['reg.example.com/app@sha512:abc', 'only sha256'],
    ['reg.example.com/app@sha256:abc', 'malformed digest'],
    ['reg.example.com/app:bad!tag', 'malformed tag'],
    ['reg.example.com//app', 'empty repository path'],
    ['reg.example.com:99999/app', 'out of range'],
    [`sha256:${'a'.repeat(64)}`, 'names no repository'],
  ])('refuses %j with a reason', (input, why) => {
    expect(() => parseReference(input)).toThrow(RegistryError);
    expect(() => parseReference(input)).toThrow(why);
  });
});

describe('parseChallenge', () => {
  it('reads the scheme and quoted or bare parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' },
    });
    expect(parseChallenge('Basic realm=stella-test')).toEqual({ scheme: 'basic', params: { realm: 'stella-test' } });
    expect(parseChallenge(null)).toBeUndefined();
  });
});

describe('manifests and blobs (docker-registry, anonymous)', () => {
  it('resolves a tag and a digest to the pushed manifest digest', async () => {
    const c = createRegistryClient(insecure(reg));
    const byTag = await c.resolve(`${reg.host}/app:1.0`);
    expect(byTag.digest).toBe(fx.digest);
    expect(byTag.pinned).toBe(`${reg.host}/app@${fx.digest}`);
    expect(byTag.indexDigest).toBeUndefined();
    const byDigest = await c.resolve(byTag.pinned);
    expect(byDigest.digest).toBe(fx.digest);
    const m = await c.getManifest(byTag.pinned);
    expect(sha256Digest(m.bytes)).toBe(fx.digest);
    expect(m.mediaType).toBe(MEDIA_TYPES.ociManifest);
    const head = await c.headManifest(`${reg.host}/app:1.0`);
    expect(head?.digest).toBe(fx.digest);
    expect(await c.headManifest(`${reg.host}/app:nope`)).toBeUndefined();
  });

  it('streams a blob verified against its digest and reads small blobs bounded', async () => {
    const c = createRegistryClient(insecure(reg));
    const layer = fx.layerDigests[0]!;
    const s = await c.openBlob(`${reg.host}/app`, layer);
    expect((await sha256Stream(s)).digest).toBe(layer);
    expect(sha256Digest(await c.getBlob(`${reg.host}/app`, fx.configDigest))).toBe(fx.configDigest);
    await expectRegistryError(c.getBlob(`${reg.host}/app`, layer, 1000), 'TOO_LARGE', layer);
  });

  it('selects the platform from a multi-arch index, and names the platforms it has when the asked one is missing', async () => {
    const c = createRegistryClient(insecure(reg));
    const [amd, arm] = multi.images;
    await pushFixture(reg.host, 'multi:amd', multi.dir, { layoutRef: 'amd' });
    await pushFixture(reg.host, 'multi:arm', multi.dir, { layoutRef: 'arm' });
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: [
          { mediaType: MEDIA_TYPES.ociManifest, digest: amd!.digest, size: amd!.manifestSize, platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: MEDIA_TYPES.ociManifest, digest: arm!.digest, size: arm!.manifestSize, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        ],
      }),
    );
    const indexDigest = await c.putManifest(`${reg.host}/multi:latest`, index, MEDIA_TYPES.ociIndex);
    expect(indexDigest).toBe(sha256Digest(index));

    const a = await c.resolve(`${reg.host}/multi:latest`, { platform: 'linux/arm64' });
    expect(a).toMatchObject({ digest: arm!.digest, indexDigest, platform: { architecture: 'arm64', variant: 'v8' } });
    expect(a.pinned).toBe(`${reg.host}/multi@${arm!.digest}`);
    const d = await c.resolve(`${reg.host}/multi@${indexDigest}`);
    expect(d.digest).toBe(defaultPlatform() === 'linux/arm64' ? arm!.digest : amd!.digest);
    const e = await expectRegistryError(
      c.resolve(`${reg.host}/multi:latest`, { platform: 'linux/s390x' }),
      'PLATFORM_NOT_FOUND',
      `${reg.host}/multi:latest`,
      'linux/s390x',
      'linux/amd64, linux/arm64/v8',
    );
    expect(e.category).toBe('NOT_FOUND');
    await expectRegistryError(c.resolve(`${reg.host}/multi:latest`, { platform: 'linux' }), 'BAD_PLATFORM', 'os/arch');
  });

  it('answers 404 and unreachable hosts with errors naming the reference', async () => {
    const c = createRegistryClient(insecure(reg));
    const nf = await expectRegistryError(c.resolve(`${reg.host}/app:missing`), 'NOT_FOUND', `${reg.host}/app:missing`);
    expect(nf.category).toBe('NOT_FOUND');
    expect(nf.retryable).toBe(false);
    await expectRegistryError(c.getBlob(`${reg.host}/app`, `sha256:${'0'.repeat(64)}`), 'NOT_FOUND', `sha256:${'0'.repeat(64)}`);

    const closed = await freePort();
    const refused = await expectRegistryError(
      createRegistryClient({ insecureRegistries: [`127.0.0.1:${closed}`] }).resolve(`127.0.0.1:${closed}/app:1`),
      'UNREACHABLE',
      `127.0.0.1:${closed}/app:1`,
      'refused',
    );
    expect(refused.category).toBe('UNAVAILABLE');
    expect(refused.retryable).toBe(true);
    const unknown = await expectRegistryError(
      createRegistryClient().resolve('no-such-registry.invalid/app:1'),
      'UNREACHABLE',
      'no-such-registry.invalid/app:1',
      'unknown registry host',
    );
    expect(unknown.retryable).toBe(true);
  });

  it('speaks plain HTTP only to hosts listed as insecure (option or STELLA_INSECURE_REGISTRIES), never silently', async () => {
    const e = await expectRegistryError(
      createRegistryClient({ authFile: join(tmp, 'no-auth.json') }).resolve(`${reg.host}/app:1.0`),
      'INSECURE',
      `${reg.host}/app:1.0`,
      'insecure registry',
    );
    expect(e.category).toBe('BAD_INPUT');
    process.env.STELLA_INSECURE_REGISTRIES = `other:1,${reg.host}`;
    try {
      expect((await createRegistryClient({ authFile: join(tmp, 'no-auth.json') }).resolve(`${reg.host}/app:1.0`)).digest).toBe(fx.digest);
    } finally {
      delete process.env.STELLA_INSECURE_REGISTRIES;
    }
  });
});

describe('authentication', () => {
  let authReg: TestRegistry;
  beforeAll(async () => {
    authReg = await startRegistry({ auth: { user: 'ci', password: 's3cret' } });
    await pushFixture(authReg.host, 'team/app:1', fx.dir, { creds: authReg.auth! });
  });
  afterAll(async () => authReg?.stop());

  it('basic: credentials from a docker config.json (auth base64, or username/password) open the registry', async () => {
    const f1 = join(tmp, 'auth-b64.json');
    await writeFile(f1, JSON.stringify({ auths: { [`http://${authReg.host}/v2/`]: { auth: Buffer.from('ci:s3cret').toString('base64') } } }));
    const c1 = createRegistryClient({ authFile: f1, insecureRegistries: [authReg.host] });
    expect((await c1.resolve(`${authReg.host}/team/app:1`)).digest).toBe(fx.digest);
    expect((await sha256Stream(await c1.openBlob(`${authReg.host}/team/app`, fx.layerDigests[0]!))).digest).toBe(fx.layerDigests[0]);

    const f2 = join(tmp, 'auth-userpass.json');
    await writeFile(f2, JSON.stringify({ auths: { [authReg.host]: { username: 'ci', password: 's3cret' } } }));
    process.env.STELLA_REGISTRY_AUTH_FILE = f2;
    try {
      expect((await createRegistryClient({ insecureRegistries: [authReg.host] }).resolve(`${authReg.host}/team/app:1`)).digest).toBe(fx.digest);
    } finally {
      delete process.env.STELLA_REGISTRY_AUTH_FILE;
    }
  });

  it('401 says whether credentials are missing or wrong, naming registry and reference', async () => {
    const missing = await expectRegistryError(
      createRegistryClient(insecure(authReg)).resolve(`${authReg.host}/team/app:1`),
      'UNAUTHORIZED',
      `${authReg.host}/team/app:1`,
      'no credentials',
    );
    expect(missing.category).toBe('FORBIDDEN');
    const f = join(tmp, 'auth-wrong.json');
    await writeFile(f, JSON.stringify({ auths: { [authReg.host]: { username: 'ci', password: 'wrong' } } }));
    await expectRegistryError(
      createRegistryClient({ authFile: f, insecureRegistries: [authReg.host] }).resolve(`${authReg.host}/team/app:1`),
      'UNAUTHORIZED',
      `${authReg.host}/team/app:1`,
      'rejected the credentials',
    );
    await expectRegistryError(
      createRegistryClient({ authFile: join(tmp, 'absent.json'), insecureRegistries: [authReg.host] }).resolve(`${authReg.host}/team/app:1`),
      'AUTH_FILE',
      'absent.json',
    );
  });

  it('bearer: the token flow (challenge → token service with basic credentials → retry), tokens reused per scope', async () => {
    // A token service and a bearer-protected front for the real registry, in this process.
    const proxy = await startProxy(reg.url);
    const issued = new Set<string>();
    const tokenRequests: string[] = [];
    proxy.intercept = (req, res, body) => {
      const u = new URL(req.url ?? '/', proxy.url);
      if (u.pathname === '/token') {
        // GET with basic credentials, or POST with an OAuth2 refresh token (docker's identitytoken).
        const form = new URLSearchParams(body.toString());
        tokenRequests.push(req.method === 'POST' ? `refresh ${form.get('scope')}` : (u.searchParams.get('scope') ?? ''));
        const ok =
          req.method === 'POST'
            ? form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === 'refresh-abc' && form.get('service') === 'test-registry'
            : req.headers.authorization === `Basic ${Buffer.from('robot:tok-pass').toString('base64')}`;
        if (!ok) {
          res.writeHead(401).end();
          return true;
        }
        const t = `tok-${issued.size}`;
        issued.add(t);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: t, expires_in: 300 }));
        return true;
      }
      const bearer = req.headers.authorization?.replace(/^Bearer /, '');
      if (!bearer || !issued.has(bearer)) {
        res
          .writeHead(401, { 'www-authenticate': `Bearer realm="${proxy.url}/token",service="test-registry",scope="repository:app:pull"` })
          .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
        return true;
      }
      return false;
    };
    try {
      const f = join(tmp, 'auth-bearer.json');
      await writeFile(f, JSON.stringify({ auths: { [proxy.host]: { username: 'robot', password: 'tok-pass' } } }));
      const c = createRegistryClient({ authFile: f, insecureRegistries: [proxy.host] });
      expect((await c.resolve(`${proxy.host}/app:1.0`)).digest).toBe(fx.digest);
      expect((await c.getBlob(`${proxy.host}/app`, fx.configDigest)).length).toBeGreaterThan(0);
      expect(tokenRequests).toEqual(['repository:app:pull']);

      const fi = join(tmp, 'auth-identity.json');
      await writeFile(fi, JSON.stringify({ auths: { [proxy.host]: { auth: Buffer.from('<token>:').toString('base64'), identitytoken: 'refresh-abc' } } }));
      expect((await createRegistryClient({ authFile: fi, insecureRegistries: [proxy.host] }).resolve(`${proxy.host}/app:1.0`)).digest).toBe(fx.digest);
      expect(tokenRequests).toEqual(['repository:app:pull', 'refresh repository:app:pull']);

      const noCreds = await expectRegistryError(
        createRegistryClient(insecure(proxy)).resolve(`${proxy.host}/app:1.0`),
        'UNAUTHORIZED',
        `${proxy.host}/app:1.0`,
        'anonymous',
      );
      expect(noCreds.category).toBe('FORBIDDEN');
    } finally {
      await proxy.stop();
    }
  });
});

describe('redirects', () => {
  it('follows a blob redirect to another host without sending it the credentials', async () => {
    // Storage host: serves the blob from the real registry, records what Authorization it was sent.
    const seen: Array<string | undefined> = [];
    const storage = await startProxy(reg.url);
    storage.intercept = (req) => {
      seen.push(req.headers.authorization);
      return false;
    };
    const front = await startProxy(reg.url);
    const basic = `Basic ${Buffer.from('ci:pw').toString('base64')}`;
    front.intercept = (req, res) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="front"' }).end();
        return true;
      }
      if (req.url?.includes('/blobs/')) {
        res.writeHead(307, { location: `${storage.url}${req.url}` }).end();
        return true;
      }
      return false;
    };
    try {
      const f = join(tmp, 'auth-front.json');
      await writeFile(f, JSON.stringify({ auths: { [front.host]: { username: 'ci', password: 'pw' } } }));
      const c = createRegistryClient({ authFile: f, insecureRegistries: [front.host, storage.host] });
      const layer = fx.layerDigests[1]!;
      expect((await sha256Stream(await c.openBlob(`${front.host}/app`, layer))).digest).toBe(layer);
      expect(seen).toEqual([undefined]);
      // A redirect to a plain-HTTP host that is not listed is refused.
      const c2 = createRegistryClient({ authFile: f, insecureRegistries: [front.host] });
      await expectRegistryError(c2.openBlob(`${front.host}/app`, layer).then(sha256Stream), 'INSECURE', layer, storage.host);
    } finally {
      await front.stop();
      await storage.stop();
    }
  });
});

describe('integrity and limits (proxy altering a real registry)', () => {
  let proxy: Proxy;
  beforeAll(async () => {
    proxy = await startProxy(reg.url);
  });
  afterAll(async () => proxy?.stop());

  it('refuses a manifest whose bytes do not match the requested or announced digest', async () => {
    proxy.rewrite = (path, body) => (path.includes('/manifests/') ? Buffer.concat([body, Buffer.from('\n')]) : body);
    const c = createRegistryClient(insecure(proxy));
    try {
      const e = await expectRegistryError(c.resolve(`${proxy.host}/app@${fx.digest}`), 'DIGEST_MISMATCH', `${proxy.host}/app@${fx.digest}`);
      expect(e.category).toBe('INTEGRITY');
      await expectRegistryError(c.resolve(`${proxy.host}/app:1.0`), 'DIGEST_MISMATCH', `${proxy.host}/app:1.0`, 'announced');
    } finally {
      proxy.rewrite = undefined;
    }
  });

  it('refuses a huge manifest while reading it', async () => {
    proxy.intercept = (req, res) => {
      if (!req.url?.includes('/manifests/huge')) return false;
      res.writeHead(200, { 'content-type': MEDIA_TYPES.ociManifest });
      res.end(Buffer.alloc(5 << 20, 0x20));
      return true;
    };
    try {
      const e = await expectRegistryError(createRegistryClient(insecure(proxy)).resolve(`${proxy.host}/app:huge`), 'TOO_LARGE', `${proxy.host}/app:huge`);
      expect(e.category).toBe('TOO_LARGE');
      await expectRegistryError(
        createRegistryClient({ ...insecure(proxy), maxManifestBytes: 100 }).resolve(`${proxy.host}/app:1.0`),
        'TOO_LARGE',
        '100-byte limit',
      );
    } finally {
      proxy.intercept = undefined;
    }
  });

  it('403 and 5xx are FORBIDDEN and UNAVAILABLE (retryable), naming the reference', async () => {
    proxy.intercept = (req, res) => {
      if (req.url?.includes('/manifests/denied')) {
        res
          .writeHead(403, { 'content-type': 'application/json' })
          .end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }));
        return true;
      }
      if (req.url?.includes('/manifests/broken')) {
        res.writeHead(503).end('maintenance');
        return true;
      }
      return false;
    };
    try {
      const c = createRegistryClient(insecure(proxy));
      const d = await expectRegistryError(c.resolve(`${proxy.host}/app:denied`), 'DENIED', `${proxy.host}/app:denied`, 'denied');
      expect(d.category).toBe('FORBIDDEN');
      const u = await expectRegistryError(c.resolve(`${proxy.host}/app:broken`), 'UNAVAILABLE', `${proxy.host}/app:broken`, '503');
      expect(u.retryable).toBe(true);
    } finally {
      proxy.intercept = undefined;
    }
  });

  it('a registry that stalls mid-blob fails the stream as retryable instead of hanging', async () => {
    const layer = fx.layerDigests[0]!;
    const held: ServerResponse[] = [];
    proxy.intercept = (req, res) => {
      if (!req.url?.includes(`/blobs/${layer}`)) return false;
      res.writeHead(200, { 'content-length': String(1 << 20), 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(64 << 10));
      held.push(res);
      return true;
    };
    try {
      const c = createRegistryClient({ ...insecure(proxy), timeoutMs: 300 });
      const e = await expectRegistryError(c.openBlob(`${proxy.host}/app`, layer).then(sha256Stream), 'UNREACHABLE', layer, 'did not answer in time');
      expect(e.retryable).toBe(true);
    } finally {
      proxy.intercept = undefined;
      for (const r of held) r.destroy();
    }
  });

  it('a layer corrupted mid-stream fails the stream and never enters the layer cache', async () => {
    const layer = fx.layerDigests[0]!;
    proxy.rewrite = (path, body) => {
      if (!path.includes(`/blobs/${layer}`)) return body;
      const b = Buffer.from(body);
      b[b.length >> 1]! ^= 0xff;
      return b;
    };
    const cacheDir = join(tmp, 'cache-corrupt');
    const cache = createLayerCache({ dir: cacheDir, maxBytes: 64 << 20 });
    try {
      const image = await openRegistryImage(createRegistryClient(insecure(proxy)), `${proxy.host}/app:1.0`, { cache });
      expect(image.digest).toBe(fx.digest);
      let received = 0;
      const s = image.openLayer(image.layers[0]!);
      s.on('data', (c: Buffer) => (received += c.length));
      const e = await expectRegistryError(
        new Promise((res, rej) => s.on('end', res).on('error', rej)),
        'DIGEST_MISMATCH',
        layer,
        `${proxy.host}/app@${fx.digest}`,
      );
      expect(e.category).toBe('INTEGRITY');
      expect(received).toBeGreaterThan(0);
      // The partial temp file is removed as the stream is torn down.
      for (let i = 0; i < 100 && (await readdir(join(cacheDir, 'tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await readdir(join(cacheDir, 'tmp'))).toEqual([]);
      expect(await cache.lookup(layer)).toBeUndefined();
      expect((await cache.usage()).entries).toBe(0);
      // The scanner reading the same image fails on that layer too.
      await expect(readImageFilesystem(image, { wants: () => true })).rejects.toThrow(/digest mismatch/);
    } finally {
      proxy.rewrite = undefined;
    }
  });
});

describe('openRegistryImage and the layer cache', () => {
  it('the scanner reads layers streamed from the registry; a second open reads them from the cache', async () => {
    const proxy = await startProxy(reg.url);
    try {
      const cache = createLayerCache({ dir: join(tmp, 'cache-ok'), maxBytes: 64 << 20 });
      const c = createRegistryClient(insecure(proxy));
      const image = await openRegistryImage(c, `${proxy.host}/app:1.0`, { cache });
      expect(image).toMatchObject({ digest: fx.digest, configDigest: fx.configDigest, platform: { os: 'linux', architecture: 'amd64' } });
      expect(image.layers.map((l) => l.digest)).toEqual(fx.layerDigests);
      // peek (compression sniffing) asks for the first bytes only
      expect((await image.peekLayer(image.layers[0]!, 2)).toString('hex')).toBe('1f8b');
      expect((await image.peekLayer(image.layers[1]!, 4)).length).toBe(4);
      const fs = await readImageFilesystem(image, { wants: (p) => p === '/etc/os-release' });
      expect(fs.readFile('/etc/os-release')?.toString()).toContain('ID=alpine');
      expect(fs.exists('/srv/second.bin')).toBe(true);
      for (const d of fx.layerDigests) expect(await cache.lookup(d)).toBeDefined();

      proxy.requests.length = 0;
      const again = await openRegistryImage(c, `${proxy.host}/app@${fx.digest}`, { cache });
      const fs2 = await readImageFilesystem(again, { wants: (p) => p === '/etc/os-release' });
      expect(fs2.readFile('/etc/os-release')?.toString()).toContain('ID=alpine');
      expect(proxy.requests.filter((r) => fx.layerDigests.some((d) => r.includes(`/blobs/${d}`)))).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });

  it('a cache entry corrupted on disk is refused and removed; the next read comes from the registry again', async () => {
    const c = createRegistryClient(insecure(reg));
    const cache = createLayerCache({ dir: join(tmp, 'cache-rot'), maxBytes: 64 << 20 });
    const image = await openRegistryImage(c, `${reg.host}/app:1.0`, { cache });
    const layer = image.layers[1]!;
    await sha256Stream(image.openLayer(layer));
    const path = (await cache.lookup(layer.digest!))!;
    const bytes = await readFile(path);
    bytes[100]! ^= 0xff;
    await writeFile(path, bytes);
    await expectRegistryError(sha256Stream(image.openLayer(layer)), 'DIGEST_MISMATCH', 'layer cache', layer.digest!);
    for (let i = 0; i < 100 && (await cache.lookup(layer.digest!)); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await cache.lookup(layer.digest!)).toBeUndefined();
    expect((await sha256Stream(image.openLayer(layer))).digest).toBe(layer.digest);
    expect(await cache.lookup(layer.digest!)).toBeDefined();
  });

  it('evicts the least recently used layers beyond the size limit', async () => {
    const c = createRegistryClient(insecure(reg));
    const [big, small] = fx.layerDigests as [string, string];
    const sizes = await Promise.all([c.getBlob(`${reg.host}/app`, big, 8 << 20), c.getBlob(`${reg.host}/app`, small, 8 << 20)]).then((b) =>
      b.map((x) => x.length),
    );
    // Room for either layer, not both.
    const cache = createLayerCache({ dir: join(tmp, 'cache-lru'), maxBytes: Math.max(...sizes) + 1000 });
    const image = await openRegistryImage(c, `${reg.host}/app:1.0`, { cache });
    await sha256Stream(image.openLayer(image.layers[0]!));
    expect(await cache.lookup(big)).toBeDefined();
    await sha256Stream(image.openLayer(image.layers[1]!));
    expect(await cache.lookup(small)).toBeDefined();
    expect(await cache.lookup(big)).toBeUndefined();
    const usage = await cache.usage();
    expect(usage.entries).toBe(1);
    expect(usage.bytes).toBeLessThanOrEqual(cache.maxBytes);
  });
});

describe('push and referrers', () => {
  const artifactType = 'application/vnd.stella.test+json';

  async function pushReferrer(c: ReturnType<typeof createRegistryClient>, repo: string, subject: { digest: string; size: number }, note: string) {
    const payload = await c.pushBlob(repo, Buffer.from(JSON.stringify({ note })));
    // config.mediaType = artifactType too: go-containerregistry's referrers API reports the config media type as artifactType.
    const emptyConfig = await c.pushBlob(repo, Buffer.from('{}'));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociManifest,
        artifactType,
        config: { mediaType: artifactType, digest: emptyConfig.digest, size: emptyConfig.size },
        layers: [{ mediaType: 'application/json', digest: payload.digest, size: payload.size }],
        subject: { mediaType: MEDIA_TYPES.ociManifest, digest: subject.digest, size: subject.size },
        annotations: { 'org.example.note': note },
      }),
    );
    const digest = await c.putManifest(parseReference(`${repo}@${sha256Digest(manifest)}`), manifest, MEDIA_TYPES.ociManifest);
    return { digest, size: manifest.length };
  }

  it('OCI 1.1 referrers API (go-containerregistry registry)', async () => {
    const r = await startReferrersRegistry();
    try {
      await pushFixture(r.host, 'app:1.0', fx.dir);
      const c = createRegistryClient(insecure(r));
      const subject = { digest: fx.digest, size: fx.images[0]!.manifestSize };
      const pushed = await pushReferrer(c, `${r.host}/app`, subject, 'via-api');
      // pushing the same blob again is skipped (HEAD finds it)
      expect((await c.pushBlob(`${r.host}/app`, Buffer.from('{}'))).size).toBe(2);
      expect(await c.supportsReferrers(`${r.host}/app`)).toBe(true);
      const refs = await c.referrers(`${r.host}/app`, fx.digest, { artifactType });
      expect(refs.map((d) => d.digest)).toEqual([pushed.digest]);
      expect(refs[0]).toMatchObject({ artifactType, annotations: { 'org.example.note': 'via-api' } });
      expect(await c.referrers(`${r.host}/app`, fx.digest, { artifactType: 'application/other' })).toEqual([]);
    } finally {
      await r.stop();
    }
  });

  it('follows the referrers API paging (Link rel="next")', async () => {
    const proxy = await startProxy(reg.url);
    const d = (x: string) => ({ mediaType: MEDIA_TYPES.ociManifest, digest: sha256Digest(x), size: x.length, artifactType });
    proxy.intercept = (req, res) => {
      if (!req.url?.includes('/referrers/')) return false;
      const second = req.url.includes('page=2');
      res
        .writeHead(200, { 'content-type': MEDIA_TYPES.ociIndex, ...(second ? {} : { link: `</v2/app/referrers/${fx.digest}?page=2>; rel="next"` }) })
        .end(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [d(second ? 'two' : 'one')] }));
      return true;
    };
    try {
      const refs = await createRegistryClient(insecure(proxy)).referrers(`${proxy.host}/app`, fx.digest);
      expect(refs.map((r) => r.digest)).toEqual([sha256Digest('one'), sha256Digest('two')]);
    } finally {
      await proxy.stop();
    }
  });

  it('referrers tag fallback (sha256-<hex> index) where the registry lacks the API (distribution 2.8)', async () => {
    const c = createRegistryClient(insecure(reg));
    const repo = `${reg.host}/app`;
    const subject = { digest: fx.digest, size: fx.images[0]!.manifestSize };
    const pushed = await pushReferrer(c, repo, subject, 'via-tag');
    expect(await c.supportsReferrers(repo)).toBe(false);
    expect(await c.referrers(repo, fx.digest)).toEqual([]);
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.ociIndex,
        manifests: [
          { mediaType: MEDIA_TYPES.ociManifest, digest: pushed.digest, size: pushed.size, artifactType, annotations: { 'org.example.note': 'via-tag' } },
        ],
      }),
    );
    await c.putManifest(`${repo}:${fx.digest.replace(':', '-')}`, index, MEDIA_TYPES.ociIndex);
    const refs = await c.referrers(repo, fx.digest, { artifactType });
    expect(refs.map((d) => d.digest)).toEqual([pushed.digest]);
    expect(await c.referrers(repo, fx.digest, { artifactType: 'application/other' })).toEqual([]);
  });
});

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

/**
 * Real OCI registries as test processes:
 * - `startRegistry()`: Debian's `docker-registry` (distribution 2.8.2), filesystem storage in a
 *   temp dir, on a free loopback port, optionally htpasswd-protected (basic auth). It lacks the
 *   OCI 1.1 referrers API, so it exercises the referrers tag fallback.
 * - `startReferrersRegistry()`: go-containerregistry's in-memory registry with the referrers API
 *   on (test/support/referrers-registry, built by .ci/run into $(go env GOPATH)/bin).
 * - `pushFixture()`: `skopeo copy` an OCI layout (test/support/oci-fixture.ts) into a registry.
 * Both speak plain HTTP: clients must list the host as insecure.
 */

const run = promisify(execFile);

export interface TestRegistry {
  /** `127.0.0.1:PORT` (what goes into image references). */
  host: string;
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Set when started with auth. */
  auth?: { user: string; password: string };
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  for (;;) {
    if (exited !== undefined) throw new Error(`registry exited with ${exited}: ${output()}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`registry at ${url} did not come up: ${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopper(child: ChildProcess, dir?: string): () => Promise<void> {
  return async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  };
}

/**
 * Debian's docker-registry (distribution 2.8.2) on a free port; `auth` turns on htpasswd (basic)
 * auth; `notify` sends its notification envelopes to that URL with that Authorization header
 * (`notifications.endpoints`, blob events left out), as an operator would configure it.
 */
export async function startRegistry(
  opts: { auth?: { user: string; password: string }; notify?: { url: string; authorization: string } } = {},
): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'stella-registry-'));
  const port = await freePort();
  let authBlock = '';
  if (opts.auth) {
    const { stdout } = await run('htpasswd', ['-Bbn', opts.auth.user, opts.auth.password]);
    await writeFile(join(dir, 'htpasswd'), stdout);
    authBlock = `auth:\n  htpasswd:\n    realm: stella-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    authBlock,
    ...(opts.notify
      ? [
          'notifications:',
          '  endpoints:',
          '    - name: stella',
          `      url: ${opts.notify.url}`,
          '      headers:',
          `        Authorization: [${JSON.stringify(opts.notify.authorization)}]`,
          '      timeout: 5s',
          '      threshold: 3',
          '      backoff: 1s',
          '      ignoredmediatypes: [application/octet-stream]',
        ]
      : []),
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(child, dir);
  try {
    await waitReady(url, child, () => out);
  } catch (e) {
    await stop();
    throw e;
  }
  return { host: `127.0.0.1:${port}`, url, ...(opts.auth ? { auth: opts.auth } : {}), stop };
}

function referrersRegistryBinary(): string {
  const dirs = [process.env.GOPATH ? join(process.env.GOPATH, 'bin') : '', join(homedir(), 'go', 'bin'), '/root/go/bin'].filter(Boolean);
  for (const d of dirs) {
    const p = join(d, 'stella-referrers-registry');
    if (existsSync(p)) return p;
  }
  throw new Error(
    'stella-referrers-registry not found: build it with `cd test/support/referrers-registry && go build -o "$(go env GOPATH)/bin/stella-referrers-registry" .` (.ci/run does)',
  );
}

/** go-containerregistry's registry (in memory) with the OCI 1.1 referrers API enabled. */
export async function startReferrersRegistry(): Promise<TestRegistry> {
  const child = spawn(referrersRegistryBinary(), ['-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr!.on('data', (d) => (out = (out + d).slice(-4000)));
  const port = await new Promise<number>((res, rej) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => {
      const m = /serving on port (\d+)/.exec(l);
      if (m) res(Number(m[1]));
    });
    child.once('exit', (code) => rej(new Error(`referrers registry exited with ${code}: ${out}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = stopper(child);
  try {
    await waitReady(url, child, () => out);
  } catch (e) {
    await stop();
    throw e;
  }
  return { host: `127.0.0.1:${port}`, url, stop };
}

export interface PushFixtureOptions {
  /** Name of the manifest inside the layout (org.opencontainers.image.ref.name), when it holds several. */
  layoutRef?: string;
  /** Push a whole index (multi-arch) rather than one platform's image (skopeo --all). */
  all?: boolean;
  creds?: { user: string; password: string };
}

/**
 * `skopeo copy oci:<dir> docker://<host>/<repoTag>` over plain HTTP; returns the pushed
 * manifest's digest as skopeo reports it (the registry's digest of the bytes it stored).
 */
export async function pushFixture(host: string, repoTag: string, ociLayoutDir: string, opts: PushFixtureOptions = {}): Promise<string> {
  const tmp = await mkdtemp(join(tmpdir(), 'stella-skopeo-'));
  try {
    const digestFile = join(tmp, 'digest');
    const args = [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--preserve-digests',
      '--digestfile',
      digestFile,
      ...(opts.all ? ['--all'] : []),
      ...(opts.creds ? ['--dest-creds', `${opts.creds.user}:${opts.creds.password}`] : []),
      `oci:${resolve(ociLayoutDir)}${opts.layoutRef ? `:${opts.layoutRef}` : ''}`,
      `docker://${host}/${repoTag}`,
    ];
    try {
      await run('skopeo', args, { env: { ...process.env, TMPDIR: tmp }, maxBuffer: 4 << 20 });
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`skopeo copy to ${host}/${repoTag} failed: ${err.stderr || err.message}`);
    }
    return (await readFile(digestFile, 'utf8')).trim();
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { loadFeedSnapshot } from '../src/core/scan/feeds';
import { parseManifest } from '../src/scanner/osv-mirror';
import { apiFor } from './support/api';
import { cliEnvFor, runStella } from './support/cli';
import { harness, type Harness } from './support/context';

const rec = (id: string, ecosystem: string, name: string, fixed: string, modified = '2026-11-01T00:00:00Z') => ({
  id,
  modified,
  summary: `${name} issue ${id}`,
  affected: [{ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }],
});

function zipOf(files: Record<string, unknown>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = new yazl.ZipFile();
    for (const [name, v] of Object.entries(files)) z.addBuffer(Buffer.from(JSON.stringify(v)), name, { mtime: new Date(0) });
    const chunks: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    z.outputStream.on('error', reject);
    z.end();
  });
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Writes a mirror directory: files plus a SHA256SUMS manifest over them (unless `manifest` overrides lines). */
function writeMirror(dir: string, files: Record<string, Buffer | string>, manifest?: (lines: string[]) => string[]) {
  const lines: string[] = [];
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(join(dir, ...path.split('/').slice(0, -1)), { recursive: true });
    writeFileSync(join(dir, ...path.split('/')), data);
    lines.push(`${sha(data)}  ${path}`);
  }
  writeFileSync(join(dir, 'SHA256SUMS'), `${(manifest ? manifest(lines) : lines).join('\n')}\n`);
}

describe('stella feeds sync (OSV mirror over HTTP and on disk, real API + PostgreSQL)', () => {
  let h: Harness;
  let app: FastifyInstance;
  let env: Record<string, string>;
  let server: Server;
  let base: string;
  let root: string;
  const served: string[] = [];
  const stella = (...args: string[]) => runStella(env, ...args);
  const feedCount = async () => Number((await h.ctx.db.query('SELECT count(*) AS n FROM advisory_feeds')).rows[0].n);

  beforeAll(async () => {
    h = await harness({ blob: 'fs' });
    app = await apiFor(h);
    env = await cliEnvFor(h, app);
    root = mkdtempSync(join(tmpdir(), 'osv-mirror-'));
    // A static file server over `root`, as a mirror host (or a bucket behind a proxy) would be.
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      served.push(path);
      try {
        const body = readFileSync(join(root, path));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
      } catch {
        res.writeHead(404).end('not found');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await app?.close();
    await h?.close();
  });

  it('syncs per-ecosystem all.zip from a URL after checking SHA256SUMS; idempotent; records import/sync times; the freshness gauge shows each ecosystem', async () => {
    const dir = join(root, 'v1');
    writeMirror(dir, {
      'Debian/all.zip': await zipOf({
        'DSA-1.json': rec('DSA-1', 'Debian:12', 'openssl', '3.0.13-1'),
        'DSA-2.json': rec('DSA-2', 'Debian:11', 'curl', '7.88.1-10'),
      }),
      'npm/all.zip': await zipOf({ 'GHSA-1.json': rec('GHSA-1', 'npm', 'lodash', '4.17.21') }),
      'ecosystems.txt': 'Debian\nnpm\n',
    });
    const first = await stella('feeds', 'sync', `${base}/v1`, '--format', 'json');
    expect(first.code, first.stderr).toBe(0);
    const r1 = JSON.parse(first.stdout);
    expect(r1.feed).toMatchObject({ created: true, version: 1, records: 3 });
    expect(r1.ecosystems.map((e: any) => [e.ecosystem, e.records, e.changed])).toEqual([
      ['Debian', 2, true],
      ['npm', 1, true],
    ]);
    // The manifest was fetched first, then every listed file (ecosystems.txt too: verified, not parsed).
    expect(served.filter((p) => p.startsWith('/v1/'))).toEqual(['/v1/SHA256SUMS', '/v1/Debian/all.zip', '/v1/npm/all.zip', '/v1/ecosystems.txt']);

    // The same mirror again: the same feed version, content unchanged, but the sync time moves (freshness).
    const again = JSON.parse((await stella('feeds', 'sync', `${base}/v1`, '--format', 'json')).stdout);
    expect(again.feed).toMatchObject({ created: false, version: 1, digest: r1.feed.digest });
    expect(again.ecosystems.map((e: any) => e.changed)).toEqual([false, false]);
    expect(again.ecosystems[0].importedAt).toBe(r1.ecosystems[0].importedAt);
    expect(Date.parse(again.ecosystems[0].syncedAt)).toBeGreaterThan(Date.parse(r1.ecosystems[0].syncedAt));
    expect(await feedCount()).toBe(1);

    const status = await stella('feeds', 'status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^ECOSYSTEM\s+RECORDS\s+FEED\s+IMPORTED\s+SYNCED\s+AGE/);
    expect(status.stdout).toMatch(/\nDebian\s+2\s+v1\s/);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/stella_scan_feed_age_seconds\{tenant="default",ecosystem="Debian"\} \d/);
    expect(metrics.body).toMatch(/stella_scan_feed_age_seconds\{tenant="default",ecosystem="npm"\} \d/);
    // An ecosystem last synced three days ago is what StellaFeedStale (> 2 days) fires on.
    await h.ctx.db.query(`UPDATE advisory_feed_ecosystems SET synced_at = now() - interval '3 days' WHERE ecosystem='npm'`);
    // (the gauge reads the same column; scrapes are cached, so `feeds status` shows it here)
    const st = JSON.parse((await stella('feeds', 'status', '--format', 'json')).stdout);
    const npm = st.items.find((e: any) => e.ecosystem === 'npm');
    expect(npm.ageSeconds).toBeGreaterThan(172800);
    expect(st.items.find((e: any) => e.ecosystem === 'Debian').ageSeconds).toBeLessThan(3600);
  });

  it('a sync of one ecosystem replaces its records and keeps the others; a directory of OSV JSON records works offline', async () => {
    const dir = join(root, 'v2');
    // Debian only, as loose JSON records (a directory layout), with DSA-2 withdrawn from the mirror and DSA-3 new.
    writeMirror(dir, {
      'records/DSA-1.json': JSON.stringify(rec('DSA-1', 'Debian:12', 'openssl', '3.0.13-1')),
      'records/DSA-3.json': JSON.stringify(rec('DSA-3', 'Debian:12', 'bash', '5.2.15-2+b7')),
    });
    const r = await stella('feeds', 'sync', dir, '--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.feed).toMatchObject({ created: true, version: 2, records: 3 });
    expect(out.kept).toBe(1); // npm's GHSA-1
    expect(out.ecosystems).toEqual([expect.objectContaining({ ecosystem: 'Debian', records: 2, changed: true })]);
    const feed = await loadFeedSnapshot(h.ctx, out.feed.digest);
    expect(feed.records.map((x) => x.id)).toEqual(['DSA-1', 'DSA-3', 'GHSA-1']);
  });

  it('refuses a mirror whose files do not match SHA256SUMS, lack one, or list unsafe paths: exit non-zero, one line, nothing imported', async () => {
    const before = await feedCount();
    const zip = await zipOf({ 'DSA-9.json': rec('DSA-9', 'Debian:12', 'zlib', '1:1.3') });
    // Tampered after the manifest was written (a byte flipped in transit or on the kit).
    const bad = join(root, 'bad');
    writeMirror(bad, { 'Debian/all.zip': zip });
    const flipped = Buffer.from(zip);
    flipped[flipped.length - 30] ^= 0xff;
    writeFileSync(join(bad, 'Debian', 'all.zip'), flipped);
    const viaUrl = await stella('feeds', 'sync', `${base}/bad`);
    expect(viaUrl.code).toBe(4);
    expect(viaUrl.stderr.trim().split('\n')).toHaveLength(1);
    expect(viaUrl.stderr).toMatch(/Debian\/all\.zip \(SHA256SUMS\): digest mismatch .*nothing imported/);
    expect((await stella('feeds', 'sync', bad)).code).toBe(4);

    // No manifest at all; a data file the manifest does not list.
    const none = join(root, 'none');
    mkdirSync(join(none, 'Debian'), { recursive: true });
    writeFileSync(join(none, 'Debian', 'all.zip'), zip);
    const noManifest = await stella('feeds', 'sync', none);
    expect(noManifest.code).toBe(2);
    expect(noManifest.stderr).toMatch(/has no SHA256SUMS checksum manifest/);
    const extra = join(root, 'extra');
    writeMirror(extra, { 'Debian/all.zip': zip });
    writeFileSync(join(extra, 'unlisted.json'), JSON.stringify(rec('X-1', 'npm', 'x', '1.0.0')));
    const unlisted = await stella('feeds', 'sync', extra);
    expect(unlisted.code).toBe(2);
    expect(unlisted.stderr).toMatch(/unlisted\.json is in the mirror but not in SHA256SUMS/);
    expect(() => parseManifest(`${'a'.repeat(64)}  ../etc/passwd.json\n`)).toThrow(/must be relative and stay inside the mirror/);
    // A manifest listing a file the server does not have.
    const missing = join(root, 'missing');
    writeMirror(missing, { 'Debian/all.zip': zip }, (lines) => [...lines, `${'b'.repeat(64)}  npm/all.zip`]);
    const gone = await stella('feeds', 'sync', `${base}/missing`);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/npm\/all\.zip: HTTP 404/);
    expect(await feedCount()).toBe(before);
  });
});

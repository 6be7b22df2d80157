/**
 * Reading an OSV mirror for `stella feeds sync`: a directory or an http(s) URL laid out as
 * osv.dev serves its data (`<Ecosystem>/all.zip`) or holding OSV JSON records, with a checksum
 * manifest `SHA256SUMS` at its root (`sha256sum` format: `<hex>  <relative path>`). Every file the
 * manifest lists is read and its sha256 checked before any record is used; in a directory, a
 * data file (.zip/.json) the manifest does not list is refused. An offline kit is such a
 * directory copied as is (`sha256sum -c SHA256SUMS` checks it by hand too).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { walkFiles } from '../lib/walk';
import { DigestMismatchError, FeedError } from './errors';
import { loadFeed, type OsvRecord } from './osv';

export const MIRROR_MANIFEST = 'SHA256SUMS';

export interface MirrorFile {
  path: string;
  sha256: string;
  size: number;
}

export interface MirrorEcosystem {
  /** The ecosystem as OSV names it without a release suffix (Debian, Alpine, npm, PyPI, …). */
  name: string;
  records: OsvRecord[];
}

export interface Mirror {
  source: string;
  /** sha256 of the manifest itself: identifies the mirror snapshot that was synced. */
  manifestSha256: string;
  files: MirrorFile[];
  ecosystems: MirrorEcosystem[];
}

export interface ReadMirrorOptions {
  /** Largest single file (default 1 GiB). */
  maxFileBytes?: number;
  fetch?: typeof fetch;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);
const DATA = /\.(zip|json)$/i;

/** Parse a SHA256SUMS manifest; paths must be relative and stay inside the mirror. */
export function parseManifest(text: string): { path: string; sha256: string }[] {
  const out: { path: string; sha256: string }[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim() || line.startsWith('#')) return;
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new FeedError(`${MIRROR_MANIFEST} line ${i + 1}: expected "<sha256>  <path>"`);
    const path = m[2]!.replace(/^\.\//, '');
    if (path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '') || path.includes('\\'))
      throw new FeedError(`${MIRROR_MANIFEST} line ${i + 1}: path ${JSON.stringify(path)} must be relative and stay inside the mirror`);
    if (seen.has(path)) throw new FeedError(`${MIRROR_MANIFEST} line ${i + 1}: ${path} listed twice`);
    seen.add(path);
    out.push({ path, sha256: m[1]!.toLowerCase() });
  });
  if (!out.some((f) => DATA.test(f.path))) throw new FeedError(`${MIRROR_MANIFEST} lists no .zip or .json files`);
  return out;
}

const baseOf = (eco: string) => {
  const i = eco.indexOf(':');
  return i === -1 ? eco : eco.slice(0, i);
};

async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

async function download(f: typeof fetch, url: string, max: number): Promise<Buffer> {
  let res: Response;
  try {
    res = await f(url, { redirect: 'follow' });
  } catch (e) {
    throw new FeedError(`cannot fetch ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new FeedError(`cannot fetch ${url}: HTTP ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > max) throw new FeedError(`${url} is ${declared} bytes, over the ${max}-byte limit`);
  const buf = Buffer.from(await res.arrayBuffer());
  if (buf.length > max) throw new FeedError(`${url} is over the ${max}-byte limit`);
  return buf;
}

/** Read and verify a mirror (directory or URL), grouping its records by ecosystem. */
export async function readOsvMirror(source: string, opts: ReadMirrorOptions = {}): Promise<Mirror> {
  const max = opts.maxFileBytes ?? 1024 ** 3;
  const f = opts.fetch ?? fetch;
  const url = isUrl(source);
  const base = url ? source.replace(/\/+$/, '') : source;
  const work = await mkdtemp(join(tmpdir(), 'stella-mirror-'));
  try {
    // The manifest first: it decides what is read.
    let manifestBytes: Buffer;
    if (url) manifestBytes = await download(f, `${base}/${MIRROR_MANIFEST}`, 16 << 20);
    else {
      manifestBytes = await readFile(join(base, MIRROR_MANIFEST)).catch((e: NodeJS.ErrnoException) => {
        throw new FeedError(
          e.code === 'ENOENT'
            ? `${base} has no ${MIRROR_MANIFEST} checksum manifest (sha256sum of each file)`
            : `cannot read ${join(base, MIRROR_MANIFEST)}: ${e.message}`,
        );
      });
    }
    const listed = parseManifest(manifestBytes.toString('utf8'));
    if (!url) {
      const names = new Set(listed.map((x) => x.path));
      for await (const w of walkFiles(base)) {
        const rel = relative(base, w.path).split(sep).join('/');
        if (DATA.test(rel) && !names.has(rel)) throw new FeedError(`${rel} is in the mirror but not in ${MIRROR_MANIFEST}; refusing an unverified file`);
      }
    }
    const files: MirrorFile[] = [];
    const byEco = new Map<string, Map<string, OsvRecord>>();
    const add = (eco: string, r: OsvRecord) => {
      const m = byEco.get(eco) ?? new Map<string, OsvRecord>();
      m.set(r.id, r);
      byEco.set(eco, m);
    };
    for (const [i, entry] of listed.entries()) {
      let path: string;
      let got: { sha256: string; size: number };
      if (url) {
        const buf = await download(f, `${base}/${entry.path.split('/').map(encodeURIComponent).join('/')}`, max);
        path = join(work, `${i}-${entry.path.split('/').pop()}`);
        await writeFile(path, buf);
        got = { sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length };
      } else {
        path = join(base, ...entry.path.split('/'));
        got = await hashFile(path).catch((e: Error) => {
          throw new FeedError(`${entry.path} is listed in ${MIRROR_MANIFEST} but cannot be read: ${e.message}`);
        });
      }
      if (got.sha256 !== entry.sha256) throw new DigestMismatchError(`${entry.path} (${MIRROR_MANIFEST})`, `sha256:${entry.sha256}`, `sha256:${got.sha256}`);
      files.push({ path: entry.path, sha256: got.sha256, size: got.size });
      if (!DATA.test(entry.path)) continue; // other listed files (ecosystems.txt, README) are verified, not read
      const feed = await loadFeed(path, { maxFileBytes: max });
      // `<Ecosystem>/all.zip` names its ecosystem; loose JSON records are grouped by their affected packages.
      const dir = entry.path.includes('/') ? entry.path.split('/')[0]! : null;
      const zipEco = /\.zip$/i.test(entry.path) && dir ? dir : null;
      if (zipEco && !byEco.has(zipEco)) byEco.set(zipEco, new Map());
      for (const r of feed.records) {
        const eco = zipEco ?? (r.affected ?? []).map((a) => a.package?.ecosystem).find((e): e is string => !!e);
        add(eco ? baseOf(eco) : (dir ?? 'unknown'), r);
      }
    }
    const ecosystems = [...byEco.entries()]
      .map(([name, m]) => ({ name, records: [...m.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { source, manifestSha256: createHash('sha256').update(manifestBytes).digest('hex'), files, ecosystems };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

import { createReadStream, createWriteStream, type Dirent, promises as fsp, readdirSync, type Stats, statSync, constants as FS } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { sha256Digest, sha256Stream } from '../lib/hash';
import { join, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { BlobNotFoundError, DigestMismatchError, type BlobStat, type BlobStore, type PutFileOptions, type PutOptions, type PutResult } from './types';
import { hexOf, VerifyingStream } from './hashing';

/**
 * Filesystem blob store. Layout `<root>/sha256/ab/cd/<hex>`; writes go to `<root>/tmp`,
 * are fsynced, verified and renamed into place, so a crash never leaves a half blob under
 * its final name, and the directory entry is fsynced so the rename survives power loss.
 */
/** Fan-out directories digests() lists concurrently. */
const LIST_AHEAD = 16;

/** Blobs up to this size are hashed from one read instead of a stream. */
const SMALL_BLOB = 1 << 20;

export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;
  constructor(private readonly root: string) {}

  get location(): string {
    return this.root;
  }

  pathFor(digest: string): string {
    const hex = hexOf(digest);
    return join(this.root, 'sha256', hex.slice(0, 2), hex.slice(2, 4), hex);
  }

  private tmpDir(): string {
    return join(this.root, 'tmp');
  }

  private async tmpPath(): Promise<string> {
    await this.ensureDir(this.tmpDir());
    return join(this.tmpDir(), `${Date.now()}-${process.pid}-${randomBytes(6).toString('hex')}.part`);
  }

  /**
   * Directories this process created or found: not created again on every write (the fan-out
   * directories are never removed; a rename into one that vanished anyway recreates it and retries).
   */
  private readonly knownDirs = new Set<string>();

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await fsp.mkdir(dir, { recursive: true });
    if (this.knownDirs.size >= 70_000) this.knownDirs.clear();
    this.knownDirs.add(dir);
  }

  private async renameInto(tmp: string, final: string): Promise<void> {
    try {
      await fsp.rename(tmp, final);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !this.knownDirs.delete(dirname(final))) throw e;
      await this.ensureDir(dirname(final));
      await fsp.rename(tmp, final);
    }
  }

  private async commit(tmp: string, digest: string, size: number, opts: PutFileOptions = {}): Promise<PutResult> {
    const final = this.pathFor(digest);
    await this.ensureDir(dirname(final));
    const existing = opts.absent ? null : await this.stat(digest);
    if (existing) {
      // Same content already present (content addressing makes this a no-op), unless the
      // stored copy is damaged: then the verified new copy replaces it.
      const h = await this.hash(digest);
      if (h && h.actual === digest) {
        await fsp.rm(tmp, { force: true });
        return { digest, size, created: false };
      }
    }
    await this.renameInto(tmp, final);
    if (opts.syncDir !== false) await fsyncDir(dirname(final));
    return { digest, size, created: !existing };
  }

  async syncDirs(digests: readonly string[]): Promise<void> {
    await Promise.all([...new Set(digests.map((d) => dirname(this.pathFor(d))))].map(fsyncDir));
  }

  async put(digest: string, data: Buffer, opts: PutOptions = {}): Promise<PutResult> {
    hexOf(digest);
    const actual = sha256Digest(data);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
    if (!opts.absent && (await this.stat(digest))) {
      const h = await this.hash(digest);
      if (h?.actual === digest) return { digest, size: data.length, created: false };
    }
    const tmp = await this.tmpPath();
    const fh = await fsp.open(tmp, FS.O_CREAT | FS.O_EXCL | FS.O_WRONLY, 0o444);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return this.commit(tmp, digest, data.length, opts);
  }

  async putFile(digest: string, path: string, opts: PutFileOptions = {}): Promise<PutResult> {
    hexOf(digest);
    if (opts.trusted && opts.move) {
      // The caller's fsynced, hashed temp file becomes the blob by rename: no second read or write.
      await fsp.chmod(path, 0o444);
      const size = opts.size ?? (await fsp.stat(path)).size;
      try {
        return await this.commit(path, digest, size, opts);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
        // Another filesystem: copied (and verified) below.
      }
    }
    const tmp = await this.tmpPath();
    const verify = new VerifyingStream(digest);
    try {
      await pipeline(createReadStream(path), verify, createWriteStream(tmp, { flags: 'wx', mode: 0o444 }));
      const fh = await fsp.open(tmp, 'r');
      await fh.sync();
      await fh.close();
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    return this.commit(tmp, digest, verify.bytes, opts);
  }

  async get(digest: string): Promise<Readable> {
    const p = this.pathFor(digest);
    const fh = await fsp.open(p, 'r').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new BlobNotFoundError(digest);
      throw e;
    });
    return fh.createReadStream().pipe(new VerifyingStream(digest));
  }

  async getBuffer(digest: string, expectedSize?: number): Promise<Buffer> {
    let data: Buffer;
    try {
      data =
        expectedSize !== undefined && expectedSize <= SMALL_BLOB
          ? await readExpected(this.pathFor(digest), expectedSize)
          : await fsp.readFile(this.pathFor(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(digest);
      throw e;
    }
    const actual = sha256Digest(data);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
    return data;
  }

  async hash(digest: string, expectedSize?: number): Promise<{ actual: string; size: number } | null> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(this.pathFor(digest), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    try {
      // The index's size when the caller has it (verify): open, read, close, no stat.
      const expected = expectedSize !== undefined && expectedSize <= SMALL_BLOB ? expectedSize : (await fh.stat()).size;
      // Most evidence is small: one exact read. A 1 MiB-buffered stream per 4 KiB blob costs ~15x the hashing.
      const buf = expected <= SMALL_BLOB ? Buffer.allocUnsafe(expected + 1) : null;
      const { bytesRead } = buf ? await fh.read(buf, 0, expected + 1, 0) : { bytesRead: -1 };
      if (buf && bytesRead === expected) return { actual: sha256Digest(buf.subarray(0, bytesRead)), size: bytesRead };
      // Large, or not the size expected: stream it from the start in large reads.
      const { digest, size } = await sha256Stream(fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false, start: 0 }));
      return { actual: digest, size };
    } finally {
      await fh.close();
    }
  }

  async stat(digest: string): Promise<BlobStat | null> {
    try {
      const s = await fsp.stat(this.pathFor(digest));
      return { digest, size: s.size, modifiedAt: s.mtime };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async *list(): AsyncIterable<BlobStat> {
    const base = join(this.root, 'sha256');
    const l1 = await fsp.readdir(base).catch(() => [] as string[]);
    for (const a of l1.sort()) {
      const l2 = await fsp.readdir(join(base, a)).catch(() => [] as string[]);
      for (const b of l2.sort()) {
        const files = await fsp.readdir(join(base, a, b)).catch(() => [] as string[]);
        for (const f of files.sort()) {
          if (!/^[0-9a-f]{64}$/.test(f)) continue;
          const s = await fsp.stat(join(base, a, b, f)).catch(() => null);
          if (s?.isFile()) yield { digest: `sha256:${f}`, size: s.size, modifiedAt: s.mtime };
        }
      }
    }
  }

  async *digests(): AsyncIterable<string> {
    const base = join(this.root, 'sha256');
    const leafDirs = async function* () {
      for (const a of (await fsp.readdir(base).catch(() => [] as string[])).sort())
        for (const b of (await fsp.readdir(join(base, a)).catch(() => [] as string[])).sort()) yield join(base, a, b);
    };
    const list = async (dir: string) => {
      const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
      return entries
        .filter((e) => e.isFile() && /^[0-9a-f]{64}$/.test(e.name))
        .map((e) => e.name)
        .sort();
    };
    // Up to LIST_AHEAD fan-out directories listed at once (in order): most hold one or two blobs,
    // so one readdir after another waited on each round trip to the thread pool in turn.
    const ahead: Promise<string[]>[] = [];
    for await (const dir of leafDirs()) {
      ahead.push(list(dir));
      if (ahead.length >= LIST_AHEAD) for (const f of await ahead.shift()!) yield `sha256:${f}`;
    }
    while (ahead.length) for (const f of await ahead.shift()!) yield `sha256:${f}`;
  }

  /**
   * The fan-out directories compared with what a previous scan remembered (`known`: directory →
   * stamp), listing only the leaf directories that are new or changed. A directory's stamp is its
   * inode, mtime and ctime: adding, removing or renaming an entry changes its mtime and
   * ctime, and nothing can set a ctime back, so an unchanged stamp means unchanged entries. Like
   * git's racy-index rule, a stamp within RACY_MS of this scan's start (read from the store's own
   * clock) is not trusted: it is returned as null and the directory is listed again next time, so
   * an entry added in the same clock tick as the stat is never missed.
   */
  async scanDirs(known: ReadonlyMap<string, string | null>): Promise<DirScan> {
    const base = join(this.root, 'sha256');
    // Milliseconds as doubles (sub-microsecond resolution): a change after the stat is at least
    // RACY_MS later than a trusted stamp, so the nanoseconds add nothing but BigInt costs.
    const racyFrom = (await this.clockMs()) - RACY_MS;
    const stampOf = (s: Stats) => (s.mtimeMs >= racyFrom || s.ctimeMs >= racyFrom ? null : `${s.ino}:${s.mtimeMs}:${s.ctimeMs}`);
    const children = new Map<string, string[]>();
    for (const dir of known.keys()) {
      const cut = dir.lastIndexOf('/');
      const parent = dir === '' ? null : cut < 0 ? '' : dir.slice(0, cut);
      if (parent === null) continue;
      const list = children.get(parent) ?? children.set(parent, []).get(parent)!;
      list.push(cut < 0 ? dir : dir.slice(cut + 1));
    }
    const out: DirScan = { stamps: new Map(), listed: new Map(), unchanged: [] };
    let level = [''];
    for (let depth = 0; depth <= 2; depth++) {
      const next: string[][] = [];
      await eachMeta(level, async (io, dir) => {
        const abs = dir ? join(base, dir) : base;
        const s = await io.stat(abs);
        if (!s?.isDirectory()) return;
        const stamp = stampOf(s);
        out.stamps.set(dir, stamp);
        const same = stamp !== null && known.get(dir) === stamp;
        const sub = (n: string) => (dir ? `${dir}/${n}` : n);
        if (depth === 2) {
          if (same) out.unchanged.push(dir);
          else
            out.listed.set(
              dir,
              (await io.readdir(abs)).filter((e) => e.isFile() && /^[0-9a-f]{64}$/.test(e.name)).map((e) => `sha256:${e.name}`),
            );
        } else next.push((same ? (children.get(dir) ?? []) : (await io.readdir(abs)).map((e) => e.name)).map(sub));
      });
      level = next.flat().sort();
    }
    return out;
  }

  /** Now, by the store's filesystem clock (a file's mtime), which may differ from this host's. */
  private async clockMs(): Promise<number> {
    await this.ensureDir(this.tmpDir());
    const p = join(this.tmpDir(), 'scan-clock');
    await fsp.writeFile(p, `${process.pid} ${Date.now()}`);
    return (await fsp.stat(p)).mtimeMs;
  }

  async delete(digest: string): Promise<boolean> {
    try {
      await fsp.unlink(this.pathFor(digest));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  async writeRaw(digest: string, data: Buffer): Promise<void> {
    const p = this.pathFor(digest);
    await fsp.mkdir(dirname(p), { recursive: true });
    await fsp.chmod(p, 0o644).catch(() => {});
    await fsp.writeFile(p, data, { mode: 0o444 });
    await fsp.chmod(p, 0o444).catch(() => {});
  }

  withPrefix(prefix: string): BlobStore {
    return new FsBlobStore(join(this.root, prefix));
  }

  async health(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
    const probe = Buffer.from(`stella-health-${Date.now()}-${randomBytes(4).toString('hex')}`);
    const tmp = await this.tmpPath();
    await fsp.writeFile(tmp, probe);
    const back = await fsp.readFile(tmp);
    await fsp.rm(tmp, { force: true });
    if (!back.equals(probe)) throw new Error(`filesystem store at ${this.root} returned different bytes than written`);
  }

  async cleanupTemp(olderThanMs: number, dryRun: boolean): Promise<{ removed: number; bytes: number }> {
    const entries = await fsp.readdir(this.tmpDir()).catch(() => [] as string[]);
    let removed = 0;
    let bytes = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const e of entries) {
      const p = join(this.tmpDir(), e);
      const s = await fsp.stat(p).catch(() => null);
      if (!s || s.mtimeMs > cutoff) continue;
      removed++;
      bytes += s.size;
      if (!dryRun) await fsp.rm(p, { force: true });
    }
    return { removed, bytes };
  }
}

/**
 * A small file read with one read call (open, read, close: no stat, no read to find the end);
 * a file longer than expected is read whole, so the digest check sees all of it.
 */
async function readExpected(path: string, size: number): Promise<Buffer> {
  const fh = await fsp.open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    const { bytesRead } = await fh.read(buf, 0, size + 1, 0);
    if (bytesRead <= size) return buf.subarray(0, bytesRead);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    await fh.close();
  }
}

/** A stamp within this of a scan's start is racy (2 s: coarse clocks, e.g. FAT's, and a network store's skew). */
const RACY_MS = 2000;

/** What FsBlobStore.scanDirs saw. */
export interface DirScan {
  /** Every fan-out directory seen ('' = sha256/, 'ab', 'ab/cd') and its stamp; null = racy, list again next time. */
  stamps: Map<string, string | null>;
  /** Leaf directories listed by this scan (new, changed or racy) and the blobs in each. */
  listed: Map<string, string[]>;
  /** Leaf directories whose stamp is the one remembered: not listed. */
  unchanged: string[];
}

/** stat/readdir, either synchronous (small metadata calls on cached inodes) or through the thread pool. */
interface MetaIo {
  stat(p: string): Stats | null | Promise<Stats | null>;
  readdir(p: string): Dirent[] | Promise<Dirent[]>;
}
const syncIo: MetaIo = {
  stat: (p) => statSync(p, { throwIfNoEntry: false }) ?? null,
  readdir: (p) => {
    try {
      return readdirSync(p, { withFileTypes: true });
    } catch {
      return [];
    }
  },
};
const asyncIo: MetaIo = {
  stat: (p) => fsp.stat(p).catch(() => null),
  readdir: (p) => fsp.readdir(p, { withFileTypes: true }).catch(() => []),
};

/**
 * Runs `fn` over `items` with synchronous metadata calls in slices of 256 between event-loop
 * turns: a stat of a cached inode takes microseconds, while a thread-pool round trip per
 * directory cost ~3x the whole walk (65,536 directories at most). If a slice takes longer than
 * 20 ms (inodes not in memory, a slow network store), the rest goes through the thread pool, 16
 * at a time, so the event loop is never held longer than that.
 */
async function eachMeta(items: readonly string[], fn: (io: MetaIo, item: string) => Promise<void>): Promise<void> {
  let i = 0;
  while (i < items.length) {
    const t = performance.now();
    for (const end = Math.min(items.length, i + 256); i < end; ) await fn(syncIo, items[i++]!);
    if (performance.now() - t > 20) break;
    await new Promise<void>((r) => setImmediate(r));
  }
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (i < items.length) await fn(asyncIo, items[i++]!);
    }),
  );
}

/**
 * A content-addressed layer cache: `<dir>/sha256/<hex>` holds blobs whose bytes were verified
 * against their digest on the way in. A blob is written to `<dir>/tmp/` while the verified
 * network stream flows to its reader and renamed into place only when that stream ends
 * (which the digest check allows only when the bytes match), so a partial or corrupt layer
 * never enters the cache. Entries are touched on use; past `maxBytes`, the least recently
 * used are removed. A cache failure (disk full, permissions) never fails the read.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, mkdir, open as openFile, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { DigestVerifier } from './client';
import { RegistryError } from './errors';
import { isSha256Digest } from './reference';

export interface LayerCacheOptions {
  dir: string;
  /** Total size bound; least recently used entries are removed beyond it. */
  maxBytes: number;
}

export interface LayerCache {
  readonly dir: string;
  readonly maxBytes: number;
  /** Path of the cached blob (marked as used), or undefined. */
  lookup(digest: string): Promise<string | undefined>;
  /** A cached blob's bytes, verified again while read (a corrupt entry errors and is removed). */
  read(digest: string, size: number | undefined, what: string): Readable;
  /** The cached blob opened (marked as used) and read verified, or undefined when not cached; an entry evicted after it is opened still reads in full. */
  open(digest: string, size: number | undefined, what: string): Promise<Readable | undefined>;
  /** A pass-through that stores what flows through it under `digest` once it ends; destroyed early, it stores nothing. Place it after a DigestVerifier. */
  writer(digest: string, size?: number): Transform;
  /** Remove least recently used entries until the cache is within maxBytes. */
  evict(): Promise<void>;
  /** Bytes and entries currently cached. */
  usage(): Promise<{ bytes: number; entries: number }>;
}

function hexOf(digest: string): string {
  if (!isSha256Digest(digest)) throw new RegistryError('BAD_REFERENCE', `layer cache: malformed digest ${JSON.stringify(digest)}`);
  return digest.slice('sha256:'.length);
}

class CacheWriter extends Transform {
  private ws: WriteStream | undefined;
  private failed = false;
  private committed = false;
  private written = 0;
  constructor(
    private readonly cache: DirLayerCache,
    private readonly digest: string,
    private readonly tmp: string,
    private readonly size: number | undefined,
    private readonly ready: Promise<void>,
  ) {
    super();
  }

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.ws?.destroy();
    unlink(this.tmp).catch(() => undefined);
  }

  private open(then: () => void): void {
    this.ready.then(
      () => {
        if (!this.failed && !this.ws) {
          this.ws = createWriteStream(this.tmp, { flags: 'wx' });
          this.ws.on('error', () => this.fail());
        }
        then();
      },
      () => {
        this.fail();
        then();
      },
    );
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.failed) {
      cb(null, chunk);
      return;
    }
    if (!this.ws) {
      this.open(() => this._transform(chunk, _enc, cb));
      return;
    }
    this.written += chunk.length;
    if (this.ws.write(chunk)) {
      cb(null, chunk);
      return;
    }
    const ws = this.ws;
    const go = () => {
      ws.off('drain', go);
      ws.off('close', go);
      cb(null, chunk);
    };
    ws.once('drain', go);
    ws.once('close', go);
  }

  override _flush(cb: TransformCallback): void {
    if (this.failed) {
      cb();
      return;
    }
    if (!this.ws) {
      this.open(() => this._flush(cb));
      return;
    }
    const ws = this.ws;
    ws.end(() => {
      void (async () => {
        try {
          if (this.failed) return;
          const st = await stat(this.tmp);
          if (st.size !== this.written || (this.size !== undefined && st.size !== this.size)) throw new Error('short cache write');
          await rename(this.tmp, this.cache.entryPath(this.digest));
          this.committed = true;
          await this.cache.evict();
        } catch {
          this.fail();
        }
      })().finally(() => cb());
    });
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.committed) this.fail();
    cb(err);
  }
}

class DirLayerCache implements LayerCache {
  private ready: Promise<void> | undefined;
  private evicting: Promise<void> | undefined;
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.dir, 'sha256'), { recursive: true });
      await mkdir(join(this.dir, 'tmp'), { recursive: true });
    })();
    return this.ready;
  }

  entryPath(digest: string): string {
    return join(this.dir, 'sha256', hexOf(digest));
  }

  async lookup(digest: string): Promise<string | undefined> {
    const p = this.entryPath(digest);
    try {
      const now = new Date();
      await utimes(p, now, now);
      return p;
    } catch {
      return undefined;
    }
  }

  read(digest: string, size: number | undefined, what: string): Readable {
    const p = this.entryPath(digest);
    const v = new DigestVerifier(digest, size, `${what} (layer cache)`);
    const src = createReadStream(p, { highWaterMark: 1 << 20 });
    src.on('error', (e) => v.destroy(e));
    v.on('error', (e) => {
      if (e instanceof RegistryError && e.code === 'DIGEST_MISMATCH') unlink(p).catch(() => undefined);
    });
    v.on('close', () => src.destroy());
    return src.pipe(v);
  }

  async open(digest: string, size: number | undefined, what: string): Promise<Readable | undefined> {
    const p = this.entryPath(digest);
    let fh: FileHandle;
    try {
      fh = await openFile(p, 'r');
    } catch {
      return undefined;
    }
    const now = new Date();
    await utimes(p, now, now).catch(() => undefined);
    const v = new DigestVerifier(digest, size, `${what} (layer cache)`);
    const src = fh.createReadStream({ highWaterMark: 1 << 20 });
    src.on('error', (e) => v.destroy(e));
    v.on('error', (e) => {
      if (e instanceof RegistryError && e.code === 'DIGEST_MISMATCH') unlink(p).catch(() => undefined);
    });
    v.on('close', () => src.destroy());
    return src.pipe(v);
  }

  writer(digest: string, size?: number): Transform {
    const tmp = join(this.dir, 'tmp', `${hexOf(digest)}.${process.pid}.${randomBytes(6).toString('hex')}`);
    const w = new CacheWriter(this, digest, tmp, size, this.init());
    return w;
  }

  private async entries(): Promise<Array<{ path: string; size: number; used: number }>> {
    await this.init();
    const names = await readdir(join(this.dir, 'sha256'));
    const out: Array<{ path: string; size: number; used: number }> = [];
    for (const n of names) {
      const p = join(this.dir, 'sha256', n);
      try {
        const st = await stat(p);
        if (st.isFile()) out.push({ path: p, size: st.size, used: Math.max(st.mtimeMs, st.atimeMs) });
      } catch {
        // removed meanwhile
      }
    }
    return out;
  }

  /** Temp files a crashed process left behind (older than a day: a live download touches its file as it writes). */
  private async removeStaleTemp(): Promise<void> {
    const dir = join(this.dir, 'tmp');
    const cutoff = Date.now() - 24 * 3600 * 1000;
    for (const n of await readdir(dir).catch(() => [] as string[])) {
      const p = join(dir, n);
      const st = await stat(p).catch(() => undefined);
      if (st && st.mtimeMs < cutoff) await unlink(p).catch(() => undefined);
    }
  }

  evict(): Promise<void> {
    // One eviction at a time; a caller arriving meanwhile waits for it and runs its own.
    const run = async () => {
      await this.removeStaleTemp();
      const list = await this.entries();
      let total = list.reduce((a, e) => a + e.size, 0);
      list.sort((a, b) => a.used - b.used);
      for (const e of list) {
        if (total <= this.maxBytes) break;
        await unlink(e.path).catch(() => undefined);
        total -= e.size;
      }
    };
    const next = (this.evicting ?? Promise.resolve()).then(run, run);
    this.evicting = next.catch(() => undefined);
    return next;
  }

  async usage(): Promise<{ bytes: number; entries: number }> {
    const list = await this.entries();
    return { bytes: list.reduce((a, e) => a + e.size, 0), entries: list.length };
  }
}

export function createLayerCache(opts: LayerCacheOptions): LayerCache {
  if (!opts.dir) throw new RegistryError('BAD_REFERENCE', 'layer cache: a directory is required');
  if (!Number.isFinite(opts.maxBytes) || opts.maxBytes <= 0)
    throw new RegistryError('BAD_REFERENCE', `layer cache: maxBytes must be a positive number, got ${opts.maxBytes}`);
  return new DirLayerCache(opts.dir, opts.maxBytes);
}

/** The cache named by STELLA_LAYER_CACHE_DIR (size bound STELLA_LAYER_CACHE_MAX_BYTES, default 10 GiB), or undefined. */
export function layerCacheFromEnv(env: NodeJS.ProcessEnv = process.env): LayerCache | undefined {
  const dir = env.STELLA_LAYER_CACHE_DIR;
  if (!dir) return undefined;
  const max = env.STELLA_LAYER_CACHE_MAX_BYTES ? Number(env.STELLA_LAYER_CACHE_MAX_BYTES) : 10 * 1024 ** 3;
  return createLayerCache({ dir, maxBytes: max });
}

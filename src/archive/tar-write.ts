/**
 * Deterministic tar writer. Same entries in, same bytes out, regardless of input order, clock,
 * user, umask or platform:
 *   - entries sorted by UTF-8 byte order of their path (the streaming writer asserts it instead);
 *   - mtime fixed (0 unless a caller pins another epoch), uid/gid 0, uname/gname empty;
 *   - mode 0644 for files, 0755 for directories;
 *   - POSIX ustar headers; a pax extended header ('x') is added only when the path is not
 *     printable ASCII of at most 100 bytes, or the size needs more than 11 octal digits.
 *     The ustar prefix field and GNU extensions are never used, so there is one encoding per entry.
 *   - no record padding after the two zero end blocks.
 */
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveError, ArchiveSecurityError } from './errors';
import { archivePathProblem, PathLedger } from './paths';
import { compressStream, type Compression } from './compress';

export const BLOCK = 512;
const MAX_OCTAL_SIZE = 0o77777777777; // 11 octal digits: 8 GiB - 1
const MAX_OCTAL_MTIME = 0o77777777777;
const FILE_MODE = 0o644;
const DIR_MODE = 0o755;
const ZERO_BLOCKS = Buffer.alloc(2 * BLOCK);

export interface TarWriteOptions {
  /** Modification time written for every entry, in seconds since the epoch. Default 0. */
  mtime?: number;
}

export type TarBufferEntry = { path: string; data: Buffer | Uint8Array | string } | { path: string; type: 'directory' };

export type TarFileSource = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

// ---------------------------------------------------------------------------------------------
// header encoding

function checkMtime(mtime: number | undefined): number {
  const m = mtime ?? 0;
  if (!Number.isInteger(m) || m < 0 || m > MAX_OCTAL_MTIME) throw new RangeError(`tar mtime must be an integer in 0..${MAX_OCTAL_MTIME}, got ${m}`);
  return m;
}

function checkSize(path: string, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) throw new ArchiveError('misuse', `invalid entry size ${size}`, path);
}

/** Validates a path for writing; returns it without a directory's trailing slash. */
function normalizeWritePath(path: string, type: 'file' | 'directory'): string {
  const p = type === 'directory' && path.endsWith('/') ? path.slice(0, -1) : path;
  const problem = archivePathProblem(p);
  if (problem) throw new ArchiveSecurityError('unsafe-path', `cannot write entry (${problem})`, path);
  return p;
}

function writeOctal(buf: Buffer, offset: number, fieldLen: number, value: number): void {
  // fieldLen-1 zero-padded octal digits then NUL, as GNU tar and POSIX readers expect.
  buf.write(value.toString(8).padStart(fieldLen - 1, '0') + '\0', offset, fieldLen, 'latin1');
}

function ustarHeader(name: string, size: number, typeflag: '0' | '5' | 'x', mode: number, mtime: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'latin1'); // caller guarantees printable ASCII <= 100 bytes
  writeOctal(b, 100, 8, mode);
  writeOctal(b, 108, 8, 0); // uid
  writeOctal(b, 116, 8, 0); // gid
  writeOctal(b, 124, 12, size);
  writeOctal(b, 136, 12, mtime);
  b.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  b[156] = typeflag.charCodeAt(0);
  b.write('ustar\u000000', 257, 8, 'latin1'); // magic "ustar\0" + version "00"
  // uname/gname stay empty (all NUL)
  writeOctal(b, 329, 8, 0); // devmajor
  writeOctal(b, 337, 8, 0); // devminor
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return b;
}

/** "<len> <key>=<value>\n" where <len> counts the whole record including its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body, 'utf8');
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length !== String(bodyLen).length) len = bodyLen + String(len).length;
  return `${len}${body}`;
}

const isShortAscii = (s: string) => s.length <= 100 && /^[\x20-\x7e]*$/.test(s);
const asciiFallback = (s: string) => s.replace(/[^\x20-\x7e]/g, '_');

/** Header block(s) for one entry: optional pax header + its data + the ustar header. */
export function encodeEntryHeader(path: string, type: 'file' | 'directory', size: number, mtime: number): Buffer {
  const name = type === 'directory' ? `${path}/` : path;
  const records: string[] = [];
  if (!isShortAscii(name)) records.push(paxRecord('path', path));
  if (size > MAX_OCTAL_SIZE) records.push(paxRecord('size', String(size)));
  const mode = type === 'directory' ? DIR_MODE : FILE_MODE;
  const typeflag = type === 'directory' ? '5' : '0';
  if (records.length === 0) return ustarHeader(name, size, typeflag, mode, mtime);

  const pax = Buffer.from(records.join(''), 'utf8');
  const base = path.slice(path.lastIndexOf('/') + 1);
  // Names for readers that ignore pax; readers that honour it never see them.
  const paxName = `PaxHeaders/${asciiFallback(base)}`.slice(0, 100);
  let fallback = asciiFallback(path);
  fallback = type === 'directory' ? `${fallback.slice(0, 99)}/` : fallback.slice(0, 100);
  return Buffer.concat([
    ustarHeader(paxName, pax.length, 'x', FILE_MODE, mtime),
    pax,
    padding(pax.length),
    ustarHeader(fallback, size > MAX_OCTAL_SIZE ? 0 : size, typeflag, mode, mtime),
  ]);
}

export function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rem);
}

/** Wraps the shared ledger so the writer never emits an archive our own reader would refuse. */
class WriteLedger {
  private readonly ledger = new PathLedger();
  add(path: string, type: 'file' | 'directory', original: string): void {
    const problem = this.ledger.add(path, type);
    if (problem) throw new ArchiveSecurityError('duplicate-entry', `cannot write entry (${problem})`, original);
  }
}

// ---------------------------------------------------------------------------------------------
// buffer API

/** Builds a whole archive in memory; entries may come in any order and are sorted by path bytes. */
export function buildTar(entries: readonly TarBufferEntry[], opts: TarWriteOptions = {}): Buffer {
  const mtime = checkMtime(opts.mtime);
  const prepared = entries.map((e) => {
    const type = 'data' in e ? ('file' as const) : ('directory' as const);
    const path = normalizeWritePath(e.path, type);
    const data = 'data' in e ? (typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data) : null;
    return { path, type, data, original: e.path, key: Buffer.from(path, 'utf8') };
  });
  prepared.sort((a, b) => Buffer.compare(a.key, b.key));
  const ledger = new WriteLedger();
  const parts: Uint8Array[] = [];
  for (const e of prepared) {
    ledger.add(e.path, e.type, e.original);
    const size = e.data?.byteLength ?? 0;
    parts.push(encodeEntryHeader(e.path, e.type, size, mtime));
    if (e.data) parts.push(e.data, padding(size));
  }
  parts.push(ZERO_BLOCKS);
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// streaming API

export interface TarStreamStats {
  entries: number;
  /** Tar bytes produced, including headers, padding and end blocks. */
  bytes: number;
}

export interface TarStream {
  /** The archive bytes. Pipe it somewhere (file, gzipStream(), upload) before adding entries. */
  readonly readable: Readable;
  /**
   * Appends a file whose body is exactly `size` bytes. Paths must arrive in strictly increasing
   * byte order (comparePaths). Resolves once the body has been handed to `readable`, honouring
   * backpressure, so only about one chunk per entry is in memory. A source that yields more or
   * fewer than `size` bytes aborts the whole archive (it would be corrupt).
   */
  addFile(path: string, size: number, source: TarFileSource): Promise<void>;
  /** Appends a directory entry (same ordering rule). */
  addDirectory(path: string): Promise<void>;
  /**
   * Appends a file exempt from the ordering rule; afterwards only further trailers or finalize()
   * are allowed. Used for manifests that can only be written once every entry has been hashed.
   */
  addTrailer(path: string, data: Buffer | string): Promise<void>;
  /** Writes the end-of-archive marker and ends `readable`. */
  finalize(): Promise<TarStreamStats>;
  /** Destroys `readable` with `err`; the partial archive must be discarded. */
  abort(err?: Error): void;
}

/** Streaming deterministic writer: one entry at a time, each body streamed from its source. */
export function createTarStream(opts: TarWriteOptions = {}): TarStream {
  return new TarStreamWriter(checkMtime(opts.mtime));
}

class TarStreamWriter implements TarStream {
  readonly readable: Readable;
  private readonly ledger = new WriteLedger();
  private last: Buffer | null = null;
  private busy = false;
  private trailing = false;
  private finished = false;
  private failure: Error | null = null;
  private waiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private stats: TarStreamStats = { entries: 0, bytes: 0 };

  constructor(private readonly mtime: number) {
    this.readable = new Readable({
      highWaterMark: 64 * 1024,
      read: () => this.wake(null),
    });
    this.readable.once('close', () => {
      if (!this.finished) this.failure ??= new ArchiveError('misuse', 'tar stream was closed before finalize()');
      this.wake(this.failure);
    });
  }

  private wake(err: Error | null): void {
    const w = this.waiter;
    this.waiter = null;
    if (!w) return;
    if (err) w.reject(err);
    else w.resolve();
  }

  private async push(chunk: Buffer | Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (chunk.byteLength === 0) return;
    this.stats.bytes += chunk.byteLength;
    if (this.readable.push(chunk)) return;
    // Consumer is behind: wait for read() (or close) before producing more.
    await new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private begin(): void {
    if (this.failure) throw this.failure;
    if (this.finished) throw new ArchiveError('misuse', 'tar stream already finalized');
    if (this.busy) throw new ArchiveError('misuse', 'tar stream: previous entry has not finished (await each add call)');
    this.busy = true;
  }

  private checkOrder(path: string, original: string): void {
    if (this.trailing) throw new ArchiveError('misuse', 'tar stream: no ordered entries may follow a trailer', original);
    const key = Buffer.from(path, 'utf8');
    if (this.last && Buffer.compare(this.last, key) >= 0) {
      throw new ArchiveError(
        'misuse',
        `tar stream entries must be added in strictly increasing path order (previous ${JSON.stringify(this.last.toString('utf8'))})`,
        original,
      );
    }
    this.last = key;
  }

  async addFile(path: string, size: number, source: TarFileSource): Promise<void> {
    this.begin();
    try {
      const p = normalizeWritePath(path, 'file');
      checkSize(path, size);
      this.checkOrder(p, path);
      this.ledger.add(p, 'file', path);
      await this.writeFile(p, size, source);
    } finally {
      this.busy = false;
    }
  }

  async addDirectory(path: string): Promise<void> {
    this.begin();
    try {
      const p = normalizeWritePath(path, 'directory');
      this.checkOrder(p, path);
      this.ledger.add(p, 'directory', path);
      this.stats.entries++;
      await this.push(encodeEntryHeader(p, 'directory', 0, this.mtime));
    } finally {
      this.busy = false;
    }
  }

  async addTrailer(path: string, data: Buffer | string): Promise<void> {
    this.begin();
    try {
      const p = normalizeWritePath(path, 'file');
      this.ledger.add(p, 'file', path);
      this.trailing = true;
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      await this.writeFile(p, buf.length, buf);
    } finally {
      this.busy = false;
    }
  }

  private async writeFile(path: string, size: number, source: TarFileSource): Promise<void> {
    this.stats.entries++;
    await this.push(encodeEntryHeader(path, 'file', size, this.mtime));
    let written = 0;
    try {
      if (typeof source === 'string' || source instanceof Uint8Array) {
        const buf = typeof source === 'string' ? Buffer.from(source, 'utf8') : source;
        if (buf.byteLength !== size) throw new ArchiveError('misuse', `entry body is ${buf.byteLength} bytes, declared ${size}`, path);
        written = size;
        await this.push(buf);
      } else {
        for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
          written += buf.byteLength;
          if (written > size) throw new ArchiveError('misuse', `entry body exceeds its declared size of ${size} bytes`, path);
          await this.push(buf);
        }
        if (written !== size) throw new ArchiveError('misuse', `entry body ended after ${written} of ${size} declared bytes`, path);
      }
      await this.push(padding(size));
    } catch (err) {
      // Header already emitted: the archive cannot be repaired, so fail it as a whole.
      this.abort(err as Error);
      throw err;
    }
  }

  async finalize(): Promise<TarStreamStats> {
    this.begin();
    try {
      await this.push(ZERO_BLOCKS);
      this.finished = true;
      this.readable.push(null);
      return { ...this.stats };
    } finally {
      this.busy = false;
    }
  }

  abort(err?: Error): void {
    this.failure ??= err ?? new ArchiveError('misuse', 'tar stream aborted');
    if (!this.readable.destroyed) this.readable.destroy(this.failure);
    this.wake(this.failure);
  }
}

// ---------------------------------------------------------------------------------------------
// files

export interface TarFileOptions extends TarWriteOptions {
  /** Compression applied to the tar stream. zstd buffers the archive (ZSTD_MAX_BYTES ceiling). */
  compression?: Compression;
  zstdLevel?: number;
}

/**
 * Streams an archive to `dest` atomically: written to a temp file beside it, fsynced, then
 * renamed into place; on any error the temp file is removed and `dest` is untouched.
 * `fill` adds entries (in order) and must not call finalize().
 */
export async function writeTarFile<T>(dest: string, opts: TarFileOptions, fill: (tar: TarStream) => Promise<T>): Promise<T> {
  const tar = createTarStream(opts);
  let result: { value: T } | undefined;
  await writeStreamAtomically(
    dest,
    tar.readable,
    opts,
    async () => {
      result = { value: await fill(tar) };
      await tar.finalize();
    },
    (err) => tar.abort(err),
  );
  return result!.value;
}

/**
 * Pipes `readable` (through compression) into a temp file while `produce` runs, then renames.
 * Shared by writeTarFile and the manifest writer.
 */
export async function writeStreamAtomically(
  dest: string,
  readable: Readable,
  opts: { compression?: Compression; zstdLevel?: number },
  produce: () => Promise<void>,
  abort: (err: Error) => void,
): Promise<void> {
  const tmp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
  const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true });
  const piping = pipeline(readable, compressStream(opts.compression ?? 'none', { zstdLevel: opts.zstdLevel }), out);
  piping.catch(() => {}); // observed below; avoid an unhandled rejection while produce() runs
  try {
    await produce();
    await piping;
    await rename(tmp, dest);
  } catch (err) {
    abort(err as Error);
    // If the pipeline failed first (disk full, bad directory), produce() only saw "stream closed"; report the cause.
    const pipeErr: unknown = await piping.then(
      () => undefined,
      (e: unknown) => e,
    );
    await rm(tmp, { force: true });
    throw pipeErr ?? err;
  }
  await fsyncDir(dirname(dest));
}

async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename durable; best effort because some filesystems refuse fsync on directories.
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* ignore */
  }
}

/**
 * The one tar reader: safe reading and extraction of archives we did not necessarily write
 * (evidence packs, replay bundles, backups), and the raw entry stream and random-access index
 * the image scanner models container layers and `docker save` archives with.
 *
 * Hand-written rather than tar-stream because reading must be strict where tar-stream is
 * lenient: exact checksum, pax and GNU long-name handling with repeated keys refused, no
 * reading past the end-of-archive marker (tar-stream skips zero blocks and reads on, so two
 * readers could disagree about the entries), limits checked before any body byte is read, and
 * the same parser working over a stream or positioned reads of a file. The writer (tar-write.ts)
 * is hand-written for byte-deterministic output; reader and writer share paths.ts.
 *
 * readTar (strict) accepts POSIX ustar/pax and GNU tar headers (incl. GNU long names), regular
 * files and directories (a leading `./` is stripped, as `tar -C dir .` writes it), optionally
 * gzip- or zstd-compressed (detected from magic bytes). Refused with ArchiveSecurityError naming
 * the entry: unsafe paths (see paths.ts), symlinks, hardlinks, devices, fifos, sparse files,
 * duplicate or conflicting paths, entries or totals over the limits, and data after the
 * end-of-archive marker. Damaged input (bad checksum, truncation, corrupt compression) raises
 * ArchiveFormatError ('truncated' or 'malformed').
 *
 * readTarEntries (raw) applies the same format rules but yields every entry kind with its
 * recorded name and link target, for readers that vet paths themselves (container layers).
 *
 * Everything streams: headers are parsed as bytes arrive, each entry's size is checked against
 * the limits before any of its body is read, and bodies are handed out lazily.
 */
import { constants as fsc, createReadStream } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, realpath, rmdir, unlink } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { decompressChunks, ZSTD_MAX_BYTES, type Compression } from './compress';
import { ArchiveError, ArchiveFormatError, ArchiveSecurityError } from './errors';
import { archivePathProblem, PathLedger } from './paths';
import { BLOCK, cstr, decodeName, isZero, MAX_META_BYTES, pad, parseHeader, parsePax, printable, type RawHeader, unsupportedPaxKey } from './tar-header';

export interface TarLimits {
  /** Largest single entry body, in bytes. */
  maxEntryBytes: number;
  /** Largest sum of entry body sizes, in bytes (headers and padding not counted). */
  maxTotalBytes: number;
  /** Most entries (files and directories). */
  maxEntries: number;
}

export const DEFAULT_TAR_LIMITS: Readonly<TarLimits> = Object.freeze({
  maxEntryBytes: 1024 * 1024 * 1024,
  maxTotalBytes: 8 * 1024 * 1024 * 1024,
  maxEntries: 100_000,
});

/** A file path, an in-memory archive, or a byte stream; any of them may be gzip/zstd compressed. */
export type TarInput = string | Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface TarReadOptions extends Partial<TarLimits> {
  /** Called once the compression has been sniffed. */
  onCompression?: (compression: Compression) => void;
  /** false: the input is a plain tar, never sniffed for compression (the caller decompressed it). */
  decompress?: boolean;
}

export interface TarEntry {
  /** Canonical relative path (directories without the trailing slash). */
  readonly path: string;
  readonly type: 'file' | 'directory';
  readonly size: number;
  /** Permission bits as recorded; informational (extraction always uses 0644/0755). */
  readonly mode: number;
  /** Modification time in seconds since the epoch, as recorded. */
  readonly mtime: number;
  /**
   * The body, streamed straight from the archive. Iterate it at most once, and only before
   * asking the reader for the next entry; bytes left unread are skipped.
   */
  readonly data: AsyncIterable<Buffer>;
  /** The whole body in memory (at most maxEntryBytes). Same rules as `data`. */
  buffer(): Promise<Buffer>;
}

/** An entry as readTarEntries yields it: any kind, the name as recorded, not vetted. */
export interface TarRawEntry {
  /** Name as recorded (pax path, GNU long name or prefix/name), `./` and trailing `/` kept. */
  readonly path: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
  /** Link target of a symlink or hardlink, as recorded. */
  readonly linkname?: string;
  /** Offset of the body in the (decompressed) tar. */
  readonly offset: number;
  /** Same rules as TarEntry.data. */
  readonly data: AsyncIterable<Buffer>;
  buffer(): Promise<Buffer>;
}

const MAX_GLOBAL_HEADERS = 16;
/** Zero padding tolerated after the end marker (covers tar's largest common blocking factors). */
const MAX_TRAILING_BYTES = 1024 * 1024;

function resolveLimits(opts: Partial<TarLimits>): TarLimits {
  const limits = {
    maxEntryBytes: opts.maxEntryBytes ?? DEFAULT_TAR_LIMITS.maxEntryBytes,
    maxTotalBytes: opts.maxTotalBytes ?? DEFAULT_TAR_LIMITS.maxTotalBytes,
    maxEntries: opts.maxEntries ?? DEFAULT_TAR_LIMITS.maxEntries,
  };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`tar limit ${k} must be a non-negative integer, got ${v}`);
  }
  return limits;
}

// ---------------------------------------------------------------------------------------------
// byte source

/** The stream behind `input`, if any, so an early exit can stop it even mid-read. */
function inputStream(input: TarInput): Readable | null {
  if (typeof input === 'string') return createReadStream(input, { highWaterMark: 256 * 1024 });
  if (input instanceof Uint8Array) return null;
  return typeof (input as Readable).destroy === 'function' && typeof (input as Readable).pipe === 'function' ? (input as Readable) : null;
}

async function* sourceChunks(input: TarInput, stream: Readable | null): AsyncGenerator<Uint8Array> {
  if (stream) yield* stream as AsyncIterable<Buffer>;
  else if (input instanceof Uint8Array) yield input;
  else yield* input as AsyncIterable<Uint8Array>;
}

/** Where the parser's bytes come from: exact reads for headers, bounded slices for bodies, skips. */
interface ByteSource {
  /** Up to `max` (>0) bytes, or null at end of input. */
  readSome(max: number): Promise<Buffer | null>;
  /** Exactly `n` bytes, or fewer only if input ends (caller decides whether that is an error). */
  read(n: number): Promise<Buffer>;
  /** Skips `n` bytes; false if input ended first. */
  skip(n: number): Promise<boolean>;
  close(): Promise<void>;
}

async function readExactly(src: ByteSource, n: number): Promise<Buffer> {
  const first = await src.readSome(n);
  if (!first || first.length === n) return first ?? Buffer.alloc(0);
  const parts = [first];
  let got = first.length;
  while (got < n) {
    const more = await src.readSome(n - got);
    if (!more) break;
    parts.push(more);
    got += more.length;
  }
  return Buffer.concat(parts, got);
}

/** Positioned reads of an uncompressed tar file: skipping a body is a seek, not a read. */
class FileSource implements ByteSource {
  private pos = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  async readSome(max: number): Promise<Buffer | null> {
    const n = Math.min(max, this.size - this.pos, 1024 * 1024);
    if (n <= 0) return null;
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await this.fh.read(buf, 0, n, this.pos);
    if (bytesRead === 0) return null;
    this.pos += bytesRead;
    return buf.subarray(0, bytesRead);
  }

  read(n: number): Promise<Buffer> {
    return readExactly(this, n);
  }

  async skip(n: number): Promise<boolean> {
    const ok = this.pos + n <= this.size;
    this.pos = Math.min(this.size, this.pos + n);
    return ok;
  }

  async close(): Promise<void> {}
}

/** Pull-based reader over a chunk iterator. */
class ChunkSource implements ByteSource {
  private head: Buffer | null = null;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    while (!this.head || this.head.length === 0) {
      if (this.done) return false;
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return false;
      }
      this.head = r.value;
    }
    return true;
  }

  /** Up to `max` (>0) bytes, or null at end of input. */
  async readSome(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const h = this.head!;
    if (h.length <= max) {
      this.head = null;
      return h;
    }
    this.head = h.subarray(max);
    return h.subarray(0, max);
  }

  read(n: number): Promise<Buffer> {
    return readExactly(this, n);
  }

  /** Skips `n` bytes; false if input ended first. */
  async skip(n: number): Promise<boolean> {
    while (n > 0) {
      const chunk = await this.readSome(Math.min(n, 1024 * 1024));
      if (!chunk) return false;
      n -= chunk.length;
    }
    return true;
  }

  async close(): Promise<void> {
    this.done = true;
    this.head = null;
    await this.it.return?.();
  }
}

// ---------------------------------------------------------------------------------------------
// entries

class EntryBody implements AsyncIterable<Buffer> {
  remaining: number;
  private used = false;
  stale = false;
  active = false;

  constructor(
    private readonly src: ByteSource,
    readonly path: string,
    size: number,
  ) {
    this.remaining = size;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.stale) throw new ArchiveError('misuse', 'entry body read after the reader moved to the next entry', this.path);
    if (this.used) throw new ArchiveError('misuse', 'entry body can only be read once', this.path);
    this.used = true;
    return this.chunks();
  }

  private async *chunks(): AsyncGenerator<Buffer> {
    this.active = true;
    try {
      while (this.remaining > 0) {
        if (this.stale) throw new ArchiveError('misuse', 'entry body read after the reader moved to the next entry', this.path);
        const chunk = await this.src.readSome(this.remaining);
        if (!chunk) throw new ArchiveFormatError('archive truncated inside entry', this.path, 'truncated');
        this.remaining -= chunk.length;
        yield chunk;
      }
    } finally {
      this.active = false;
    }
  }

  async buffer(size: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this) parts.push(chunk);
    return Buffer.concat(parts, size);
  }
}

/**
 * Streams the entries of a tar archive (files and directories), enforcing the safety rules
 * and limits described at the top of this module. Breaking out of the loop (or an error)
 * closes the input; a Readable passed in is destroyed.
 */
export async function* readTar(input: TarInput, opts: TarReadOptions = {}): AsyncGenerator<TarEntry, void, undefined> {
  yield* withSource(input, opts, (src, limits) => parse(src, limits, false) as AsyncGenerator<TarEntry, void, undefined>);
}

/**
 * Streams every entry of a tar archive (files, directories, symlinks, hardlinks, devices and
 * fifos as 'other') with its recorded name and link target. The format rules still hold
 * (checksums, strict pax, no data after the end marker, limits, sparse files refused); path
 * safety, duplicates and link targets are the caller's to judge. Pre-POSIX headers are accepted.
 */
export async function* readTarEntries(input: TarInput, opts: TarReadOptions = {}): AsyncGenerator<TarRawEntry, void, undefined> {
  yield* withSource(input, opts, (src, limits) => parse(src, limits, true));
}

async function* withSource<T>(
  input: TarInput,
  opts: TarReadOptions,
  run: (src: ByteSource, limits: TarLimits) => AsyncGenerator<T, void, undefined>,
): AsyncGenerator<T, void, undefined> {
  const limits = resolveLimits(opts);
  // zstd is decompressed in one go, so bound its output by what the limits could possibly need.
  // Per-entry overhead allowance: ustar + pax header blocks for a maximal path, plus padding.
  const maxZstdBytes = Math.min(ZSTD_MAX_BYTES, limits.maxTotalBytes + (limits.maxEntries + 4) * 16 * BLOCK + 2 * MAX_META_BYTES + MAX_TRAILING_BYTES);
  const stream = inputStream(input);
  const chunks = sourceChunks(input, stream) as AsyncIterable<Buffer>;
  const src = new ChunkSource(
    opts.decompress === false ? chunks[Symbol.asyncIterator]() : decompressChunks(chunks, { maxZstdBytes, onDetect: opts.onCompression }),
  );
  try {
    yield* run(src, limits);
  } finally {
    // Destroy first: a read pending on a stalled stream would otherwise block close() forever.
    stream?.destroy();
    await src.close();
  }
}

/**
 * Raw entries of an uncompressed tar file, read with positioned reads (bodies are skipped by
 * seeking, so indexing a multi-GiB `docker save` archive reads only its headers).
 */
export async function* readTarFileEntries(path: string, opts: Partial<TarLimits> = {}): AsyncGenerator<TarRawEntry, void, undefined> {
  const limits = resolveLimits(opts);
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    yield* parse(new FileSource(fh, size), limits, true);
  } finally {
    await fh.close();
  }
}

type Kind = TarRawEntry['type'];

/** The entry kind of a typeflag; strict mode refuses everything but files and directories. */
function entryKind(typeflag: string, rawPath: string, raw: boolean): Kind {
  switch (typeflag) {
    case '0':
    case '7': // contiguous file: a regular file to every modern reader
      return raw && rawPath.endsWith('/') ? 'directory' : 'file'; // pre-POSIX directories are files named "x/"
    case '5':
      return 'directory';
  }
  if (raw) return typeflag === '1' ? 'hardlink' : typeflag === '2' ? 'symlink' : 'other';
  switch (typeflag) {
    case '1':
      throw new ArchiveSecurityError('link-entry', 'hardlink entries are not allowed', rawPath);
    case '2':
      throw new ArchiveSecurityError('link-entry', 'symlink entries are not allowed', rawPath);
    case '3':
    case '4':
    case '6':
      throw new ArchiveSecurityError('special-entry', 'device and fifo entries are not allowed', rawPath);
    default:
      throw new ArchiveSecurityError('unsupported-entry', `tar entry type ${JSON.stringify(typeflag)} is not supported`, rawPath);
  }
}

/** What the parser carries from one header to the next. */
interface ParseState {
  readonly src: ByteSource;
  readonly limits: TarLimits;
  readonly raw: boolean;
  readonly ledger: PathLedger;
  /** Offset of the current header in the (decompressed) tar, for messages. */
  position: number;
  entries: number;
  total: number;
  globals: number;
  /** Extended headers waiting for the entry they describe. */
  pax: Map<string, Buffer> | null;
  longName: Buffer | null;
  longLink: Buffer | null;
}

/** An entry's name, size and link target as its headers (pax, GNU long name/link, ustar) give them. */
interface EntryName {
  rawPath: string;
  size: number;
  linkBytes: Buffer;
}

async function* parse(src: ByteSource, limits: TarLimits, raw: boolean): AsyncGenerator<TarRawEntry, void, undefined> {
  const st: ParseState = {
    src,
    limits,
    raw,
    ledger: new PathLedger(),
    position: 0,
    entries: 0,
    total: 0,
    globals: 0,
    pax: null,
    longName: null,
    longLink: null,
  };
  for (;;) {
    const block = await readBlock(st);
    if (!block) throw new ArchiveFormatError('no end-of-archive marker (archive truncated?)', undefined, 'truncated');
    if (isZero(block)) {
      if (st.pax || st.longName || st.longLink) throw new ArchiveFormatError(`extended header at offset ${st.position} is not followed by an entry`);
      await checkTrailer(src, st.position + BLOCK);
      return;
    }
    const h = parseHeader(block, st.position, raw);
    if (await readExtendedHeader(st, h)) continue;

    // A real entry: work out its name and size, then vet it before touching its body.
    const name = takeEntryName(st, h);
    const entry = admitEntry(st, h.typeflag, name);
    if (!entry) {
      st.position += BLOCK;
      continue; // the archive root itself
    }
    const { path, type } = entry;
    const { size } = name;
    const body = new EntryBody(src, path, size);
    const linkname = type === 'symlink' || type === 'hardlink' ? decodeName(name.linkBytes, true) : undefined;
    yield {
      path,
      type,
      size,
      mode: h.mode,
      mtime: h.mtime,
      ...(linkname !== undefined ? { linkname } : {}),
      offset: st.position + BLOCK,
      data: body,
      buffer: () => body.buffer(size),
    };
    await skipRestOfBody(st, body, path, size);
  }
}

async function readBlock(st: ParseState): Promise<Buffer | null> {
  const block = await st.src.read(BLOCK);
  if (block.length === 0) return null;
  if (block.length < BLOCK) throw new ArchiveFormatError(`archive truncated in a header at offset ${st.position}`, undefined, 'truncated');
  return block;
}

async function readMeta(st: ParseState, h: RawHeader, what: string): Promise<Buffer> {
  if (h.size > MAX_META_BYTES) throw new ArchiveSecurityError('entry-too-large', `${what} of ${h.size} bytes exceeds ${MAX_META_BYTES}`, printable(h.name));
  const body = await st.src.read(h.size);
  if (body.length < h.size || !(await st.src.skip(pad(h.size))))
    throw new ArchiveFormatError(`archive truncated in ${what} at offset ${st.position}`, undefined, 'truncated');
  st.position += BLOCK + h.size + pad(h.size);
  return body;
}

/** Reads a pax, global pax or GNU long name/link header into the state; false for any other header. */
async function readExtendedHeader(st: ParseState, h: RawHeader): Promise<boolean> {
  switch (h.typeflag) {
    case 'x': {
      if (st.pax) throw new ArchiveFormatError(`two pax headers in a row at offset ${st.position}`);
      st.pax = parsePax(await readMeta(st, h, 'pax header'), st.position);
      const bad = unsupportedPaxKey(st.pax.keys());
      if (bad) throw new ArchiveSecurityError('unsupported-entry', `pax key ${bad} is not supported`, paxPath(st.pax) ?? printable(h.name));
      return true;
    }
    case 'g': {
      if (++st.globals > MAX_GLOBAL_HEADERS) throw new ArchiveSecurityError('unsupported-entry', 'too many global pax headers', printable(h.name));
      const g = parsePax(await readMeta(st, h, 'global pax header'), st.position);
      // Harmless globals (git archive's comment=<commit>) are ignored; ones that would rename or resize every later entry are refused.
      for (const k of g.keys()) {
        if (k === 'path' || k === 'linkpath' || k === 'size' || unsupportedPaxKey([k])) {
          throw new ArchiveSecurityError('unsupported-entry', `global pax header sets ${k}`, printable(h.name));
        }
      }
      return true;
    }
    case 'L': {
      if (st.longName) throw new ArchiveFormatError(`two GNU long-name headers in a row at offset ${st.position}`);
      st.longName = cstr(await readMeta(st, h, 'GNU long name'), 0, MAX_META_BYTES);
      return true;
    }
    case 'K':
      if (!st.raw) throw new ArchiveSecurityError('link-entry', 'GNU long link name (links are not allowed)', printable(h.name));
      if (st.longLink) throw new ArchiveFormatError(`two GNU long-link headers in a row at offset ${st.position}`);
      st.longLink = cstr(await readMeta(st, h, 'GNU long link name'), 0, MAX_META_BYTES);
      return true;
  }
  return false;
}

/** The entry's name, size and link target from its header and the extended headers before it (which it consumes). */
function takeEntryName(st: ParseState, h: RawHeader): EntryName {
  const { pax, longName, longLink, raw } = st;
  if (pax?.has('path') && longName) throw new ArchiveSecurityError('unsupported-entry', 'entry has both a pax path and a GNU long name', paxPath(pax));
  const rawPath = pax?.has('path')
    ? decodeName(pax.get('path')!, raw)
    : longName
      ? decodeName(longName, raw)
      : h.prefix
        ? `${decodeName(h.prefix, raw)}/${decodeName(h.name, raw)}`
        : decodeName(h.name, raw);
  let size = h.size;
  if (pax?.has('size')) {
    const s = pax.get('size')!.toString('latin1');
    if (!/^[0-9]{1,16}$/.test(s)) throw new ArchiveFormatError('invalid pax size', rawPath);
    size = Number(s);
  }
  const linkBytes = pax?.get('linkpath') ?? longLink ?? h.linkname;
  st.pax = null;
  st.longName = null;
  st.longLink = null;
  return { rawPath, size, linkBytes };
}

/** Vets an entry (kind, path, limits, duplicates) and counts it; null for the archive root, which is skipped. */
function admitEntry(st: ParseState, typeflag: string, { rawPath, size }: EntryName): { path: string; type: Kind } | null {
  const { raw, limits } = st;
  const type = entryKind(typeflag, rawPath, raw);
  // `tar -C dir .` writes `./`-prefixed names and a `./` root entry; both are harmless, so
  // accept them (the ledger still catches `./a` colliding with `a`). Any other `.` is refused.
  let path = rawPath;
  if (!raw) {
    while (path.startsWith('./')) path = path.slice(2);
    if (type === 'directory' && path.endsWith('/')) path = path.slice(0, -1);
    if (type === 'directory' && size !== 0) throw new ArchiveFormatError('directory entry has a body', rawPath);
  }
  if (++st.entries > limits.maxEntries) throw new ArchiveSecurityError('too-many-entries', `archive has more than ${limits.maxEntries} entries`, rawPath);
  if (!raw) {
    if (type === 'directory' && (path === '' || path === '.')) return null;
    const problem = archivePathProblem(path);
    if (problem) throw new ArchiveSecurityError('unsafe-path', problem, rawPath);
  }
  if (size > limits.maxEntryBytes) throw new ArchiveSecurityError('entry-too-large', `entry declares ${size} bytes, limit is ${limits.maxEntryBytes}`, rawPath);
  if (st.total + size > limits.maxTotalBytes)
    throw new ArchiveSecurityError('total-too-large', `archive content exceeds ${limits.maxTotalBytes} bytes`, rawPath);
  if (!raw) {
    const conflict = st.ledger.add(path, type as 'file' | 'directory');
    if (conflict) throw new ArchiveSecurityError('duplicate-entry', conflict, rawPath);
  }
  st.total += size;
  return { path, type };
}

/** Once the consumer asks for the next entry: the body is stale, and whatever it left unread (plus padding) is skipped. */
async function skipRestOfBody(st: ParseState, body: EntryBody, path: string, size: number): Promise<void> {
  if (body.active) throw new ArchiveError('misuse', 'the next entry was requested while the previous body was still being read', path);
  body.stale = true;
  if (!(await st.src.skip(body.remaining + pad(size)))) throw new ArchiveFormatError('archive truncated inside entry', path, 'truncated');
  st.position += BLOCK + size + pad(size);
}

function paxPath(pax: Map<string, Buffer>): string | undefined {
  const p = pax.get('path');
  return p ? printable(p) : undefined;
}

/** After the first zero block only zeros may follow (the second end block and record padding). */
async function checkTrailer(src: ByteSource, offset: number): Promise<void> {
  let seen = 0;
  for (;;) {
    const chunk = await src.readSome(64 * 1024);
    if (!chunk) return;
    if (!isZero(chunk)) throw new ArchiveSecurityError('trailing-data', `data after the end-of-archive marker at offset ${offset}`);
    seen += chunk.length;
    if (seen > MAX_TRAILING_BYTES)
      throw new ArchiveSecurityError('trailing-data', `more than ${MAX_TRAILING_BYTES} bytes of padding after the end-of-archive marker`);
  }
}

// ---------------------------------------------------------------------------------------------
// extraction

export interface ExtractResult {
  /** Archive paths of the files written, in archive order. */
  files: string[];
  directories: string[];
  bytes: number;
}

/**
 * Extracts files and directories into `destDir` (created if missing). Nothing is ever written
 * outside it: paths are vetted by readTar, every target is re-checked against the resolved
 * root, existing directories on the way are lstat'ed (a symlink is refused, never followed),
 * and files are created with O_EXCL|O_NOFOLLOW so nothing existing is overwritten. Modes are
 * always 0644/0755. On any error everything this call created is removed again.
 *
 * Assumes no one else modifies destDir during extraction (Node has no openat(), so a concurrent
 * writer could still swap a verified directory for a symlink).
 */
export async function extractTar(input: TarInput, destDir: string, limits: TarReadOptions = {}): Promise<ExtractResult> {
  const absDest = resolve(destDir);
  const createdTop = await mkdir(absDest, { recursive: true, mode: 0o755 });
  const root = await realpath(absDest);
  const created: { path: string; dir: boolean }[] = [];
  const knownDirs = new Set<string>([root]);
  const result: ExtractResult = { files: [], directories: [], bytes: 0 };

  const inside = (entryPath: string): string => {
    const target = join(root, ...entryPath.split('/'));
    const rel = relative(root, target);
    if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      throw new ArchiveSecurityError('outside-destination', 'entry resolves outside the destination', entryPath);
    }
    return target;
  };

  const ensureDir = async (entryPath: string, parts: string[]): Promise<void> => {
    let current = root;
    for (const part of parts) {
      current = join(current, part);
      if (knownDirs.has(current)) continue;
      try {
        await mkdir(current, { mode: 0o755 });
        created.push({ path: current, dir: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const st = await lstat(current);
        if (st.isSymbolicLink()) throw new ArchiveSecurityError('outside-destination', 'destination contains a symlink on the entry path', entryPath);
        if (!st.isDirectory()) throw new ArchiveSecurityError('exists', 'a non-directory already exists on the entry path', entryPath);
      }
      knownDirs.add(current);
    }
  };

  try {
    for await (const entry of readTar(input, limits)) {
      const target = inside(entry.path);
      const parts = entry.path.split('/');
      if (entry.type === 'directory') {
        await ensureDir(entry.path, parts);
        result.directories.push(entry.path);
        continue;
      }
      await ensureDir(entry.path, parts.slice(0, -1));
      let fh: FileHandle;
      try {
        fh = await open(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o644);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || code === 'ELOOP') throw new ArchiveSecurityError('exists', 'refusing to overwrite an existing path', entry.path);
        throw err;
      }
      created.push({ path: target, dir: false });
      try {
        for await (const chunk of entry.data) {
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        }
      } finally {
        await fh.close();
      }
      result.files.push(entry.path);
      result.bytes += entry.size;
    }
  } catch (err) {
    await cleanup(created, createdTop, absDest);
    throw err;
  }
  return result;
}

async function cleanup(created: { path: string; dir: boolean }[], createdTop: string | undefined, absDest: string): Promise<void> {
  // Reverse creation order: files before the directories that hold them. rmdir (not rm -r)
  // so anything we did not create is never deleted.
  for (const c of created.reverse()) {
    await (c.dir ? rmdir(c.path) : unlink(c.path)).catch(() => {});
  }
  if (createdTop) {
    for (let dir = absDest; ; dir = resolve(dir, '..')) {
      await rmdir(dir).catch(() => {});
      if (dir === createdTop || dir === resolve(dir, '..')) break;
    }
  }
}

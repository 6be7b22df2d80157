/**
 * Compression for archives: gzip (streaming, node:zlib) and zstd (buffer-based, @bokuweb/zstd-wasm),
 * both with fixed parameters so the same input always compresses to the same bytes, and
 * detection by magic bytes on read so callers never have to say what they are handing us.
 *
 * Determinism caveat: compressed bytes are reproducible for a given zlib / zstd build. The tar
 * bytes underneath (and the manifest digests) are reproducible everywhere, so anything that must
 * stay stable across upgrades (signatures, ids) should be taken over those, not the .gz/.zst file.
 *
 * zstd size ceiling: the wasm build has no streaming API, and its heap is capped at 2 GiB and
 * never shrinks. We therefore hold input and output in memory and refuse anything over
 * ZSTD_MAX_BYTES (256 MiB) on either side; a level-19 compression of that size needs ~0.7 GiB
 * of wasm heap. Use zstd for replay bundles; use gzip (truly streaming) for large evidence packs.
 *
 * Integrity: the wasm build cannot enable zstd's frame checksum, so a flipped byte inside a
 * zstd body may decompress "successfully". gzip carries a CRC32. Either way, content integrity
 * is the manifest's job (manifest.ts), not the compressor's.
 */
import { Transform, type TransformCallback, Readable } from 'node:stream';
import { constants as zc, createGunzip, createGzip, gunzip as gunzipCb, gzip as gzipCb, type Gzip, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';
import { ArchiveFormatError, ArchiveSecurityError } from './errors';

export type Compression = 'none' | 'gzip' | 'zstd';

export const GZIP_LEVEL = 9;
export const ZSTD_LEVEL = 19;
/** Largest zstd input or output we handle, compressed or not (see module comment). */
export const ZSTD_MAX_BYTES = 256 * 1024 * 1024;
/** Bytes needed to recognise every magic number we know. */
export const MAGIC_BYTES = 6;

const gzipAsync = promisify(gzipCb);
const gunzipAsync = promisify(gunzipCb);

// Every parameter that influences deflate output is pinned, not left to defaults.
const GZIP_OPTIONS: ZlibOptions = { level: GZIP_LEVEL, windowBits: 15, memLevel: 8, strategy: zc.Z_DEFAULT_STRATEGY };
// RFC 1952 OS byte: zlib writes its compile-time OS (3 on Unix, 10 on Windows); 255 = "unknown" makes it platform-independent.
const GZIP_OS_OFFSET = 9;
const GZIP_OS_UNKNOWN = 255;

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_SKIPPABLE_MASK = 0xfffffff0;
const ZSTD_SKIPPABLE_MAGIC = 0x184d2a50;
// ZSTD_WINDOWLOG_MAX for 32-bit builds such as wasm32.
const ZSTD_WINDOWLOG_MAX = 30;

/**
 * Compression of a byte stream from its first bytes (pass at least MAGIC_BYTES when available).
 * Formats we recognise but do not accept (xz, bzip2, lz4, zip) are refused with a clear message
 * rather than being fed to the tar parser as garbage.
 */
export function detectCompression(head: Uint8Array): Compression {
  const b = head;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 4) {
    const magic = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    if (magic === ZSTD_MAGIC || (magic & ZSTD_SKIPPABLE_MASK) >>> 0 === ZSTD_SKIPPABLE_MAGIC) return 'zstd';
    if (magic === 0x184d2204) throw new ArchiveFormatError('lz4 compression is not supported');
    if (magic === 0x04034b50) throw new ArchiveFormatError('input is a zip archive, not a tar');
  }
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) {
    throw new ArchiveFormatError('xz compression is not supported');
  }
  if (b.length >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) throw new ArchiveFormatError('bzip2 compression is not supported');
  return 'none';
}

// ---------------------------------------------------------------------------------------------
// gzip

/** Deterministic gzip of a buffer (header: no name, mtime 0, OS unknown). Same bytes as gzipStream(). */
export async function gzipBuffer(data: Uint8Array): Promise<Buffer> {
  const out = await gzipAsync(data, GZIP_OPTIONS);
  out[GZIP_OS_OFFSET] = GZIP_OS_UNKNOWN;
  return out;
}

/** Streaming deterministic gzip; produces exactly the bytes gzipBuffer() would. */
export function gzipStream(): Transform {
  return new DeterministicGzip();
}

/**
 * Wraps zlib's Gzip only to rewrite the OS byte of the header. Backpressure holds because
 * Transform defers our write callback while the readable side is full, and we feed zlib one
 * chunk at a time.
 */
class DeterministicGzip extends Transform {
  private readonly gz: Gzip = createGzip(GZIP_OPTIONS);
  private offset = 0;
  private onEnd: TransformCallback | null = null;

  constructor() {
    super();
    this.gz.on('data', (chunk: Buffer) => {
      if (this.offset <= GZIP_OS_OFFSET && this.offset + chunk.length > GZIP_OS_OFFSET) chunk[GZIP_OS_OFFSET - this.offset] = GZIP_OS_UNKNOWN;
      this.offset += chunk.length;
      this.push(chunk);
    });
    this.gz.on('error', (err) => this.destroy(err));
    this.gz.on('end', () => this.onEnd?.());
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.gz.write(chunk, (err) => cb(err ?? null));
  }

  override _flush(cb: TransformCallback): void {
    this.onEnd = cb;
    this.gz.end();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.gz.destroy();
    cb(err);
  }
}

/** Gunzip of a buffer with an output cap (decompression bombs). */
export async function gunzipBuffer(data: Uint8Array, maxBytes: number): Promise<Buffer> {
  try {
    return await gunzipAsync(data, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new ArchiveSecurityError('decompressed-too-large', `gzip content exceeds ${maxBytes} bytes`);
    }
    throw wrapZlibError(err);
  }
}

export function gunzipStream(): Transform {
  return createGunzip();
}

function wrapZlibError(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('Z_')) return err;
  const truncated = code === 'Z_BUF_ERROR';
  return new ArchiveFormatError(
    `${truncated ? 'truncated' : 'corrupt'} gzip stream (${(err as Error).message})`,
    undefined,
    truncated ? 'truncated' : 'malformed',
  );
}

// ---------------------------------------------------------------------------------------------
// zstd

type Zstd = typeof import('@bokuweb/zstd-wasm');
let zstdReady: Promise<Zstd> | undefined;

/**
 * Loads the zstd wasm module once per process, on first use: importing it costs ~0.1 s, which
 * every CLI command that merely links this module would otherwise pay at start.
 */
function zstd(): Promise<Zstd> {
  zstdReady ??= import('@bokuweb/zstd-wasm')
    .then(async (m) => {
      await m.init();
      return m;
    })
    .catch((err: unknown) => {
      zstdReady = undefined; // allow a retry after a transient failure
      throw err;
    });
  return zstdReady;
}

/** Loads the zstd wasm module once per process; safe to call repeatedly. */
export async function initZstd(): Promise<void> {
  await zstd();
}

/** zstd-compresses `data` as a single frame that records its content size. */
export async function zstdCompress(data: Uint8Array, level: number = ZSTD_LEVEL): Promise<Buffer> {
  if (data.byteLength > ZSTD_MAX_BYTES) {
    throw new RangeError(`zstd input of ${data.byteLength} bytes exceeds the ${ZSTD_MAX_BYTES}-byte ceiling; use gzip for large archives`);
  }
  if (!Number.isInteger(level) || level < 1 || level > 22) throw new RangeError(`zstd level must be 1..22, got ${level}`);
  const out = (await zstd()).compress(data, level);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decompresses all frames of `data`, refusing output over `maxBytes`.
 *
 * The wasm wrapper sizes its output buffer from the frame header, so a hostile header could
 * make it allocate (and keep) up to 2 GiB. We walk the frames ourselves first, check declared
 * sizes against the budget, and hand the wrapper one frame at a time.
 */
export async function zstdDecompress(data: Uint8Array, maxBytes: number = ZSTD_MAX_BYTES): Promise<Buffer> {
  if (data.byteLength > ZSTD_MAX_BYTES) {
    throw new ArchiveSecurityError('decompressed-too-large', `zstd input of ${data.byteLength} bytes exceeds the ${ZSTD_MAX_BYTES}-byte ceiling`);
  }
  const budgetTotal = Math.min(maxBytes, ZSTD_MAX_BYTES);
  const frames = zstdFrames(data);
  const { decompress: zstdDecompressRaw } = await zstd();
  const parts: Buffer[] = [];
  let produced = 0;
  for (const frame of frames) {
    const budget = budgetTotal - produced;
    if (frame.contentSize !== null && frame.contentSize > budget) {
      throw new ArchiveSecurityError('decompressed-too-large', `zstd content exceeds ${budgetTotal} bytes`);
    }
    let out: Uint8Array;
    try {
      // For frames without a declared size the wrapper uses defaultHeapSize as the output capacity,
      // so an oversized frame fails inside zstd (dstSize_tooSmall) instead of growing the heap.
      out = zstdDecompressRaw(data.subarray(frame.start, frame.end), { defaultHeapSize: budget });
    } catch (err) {
      if (frame.contentSize === null) {
        throw new ArchiveFormatError(`corrupt zstd frame at offset ${frame.start}, or content exceeds ${budgetTotal} bytes (${(err as Error).message})`);
      }
      throw new ArchiveFormatError(`corrupt zstd frame at offset ${frame.start} (${(err as Error).message})`);
    }
    if (frame.contentSize !== null && out.byteLength !== frame.contentSize) {
      throw new ArchiveFormatError(`zstd frame at offset ${frame.start} declared ${frame.contentSize} bytes but produced ${out.byteLength}`);
    }
    produced += out.byteLength;
    parts.push(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, produced);
}

interface ZstdFrame {
  start: number;
  end: number;
  contentSize: number | null;
}

/** Splits `data` into zstd frames per RFC 8878 (skippable frames dropped), validating structure only. */
function zstdFrames(data: Uint8Array): ZstdFrame[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const len = data.byteLength;
  const frames: ZstdFrame[] = [];
  const truncated = () => new ArchiveFormatError('truncated zstd stream', undefined, 'truncated');
  let pos = 0;
  if (len === 0) throw truncated();
  while (pos < len) {
    if (pos + 4 > len) throw truncated();
    const magic = view.getUint32(pos, true);
    if ((magic & ZSTD_SKIPPABLE_MASK) >>> 0 === ZSTD_SKIPPABLE_MAGIC) {
      if (pos + 8 > len) throw truncated();
      pos += 8 + view.getUint32(pos + 4, true);
      if (pos > len) throw truncated();
      continue;
    }
    if (magic !== ZSTD_MAGIC) throw new ArchiveFormatError(`not a zstd frame at offset ${pos}`);
    const start = pos;
    if (pos + 5 > len) throw truncated();
    const fhd = data[pos + 4]!;
    const fcsFlag = fhd >> 6;
    const singleSegment = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    const dictFlag = fhd & 3;
    if (fhd & 0x08) throw new ArchiveFormatError(`zstd frame at offset ${start} sets a reserved header bit`);
    if (dictFlag !== 0) throw new ArchiveFormatError('zstd frames that need a dictionary are not supported');
    // The wrapper trusts zstd's own header parse; anything zstd would reject there must be
    // rejected here first, or the wrapper "allocates" an error code as a size and writes at address 0.
    if (!singleSegment) {
      if (pos + 6 > len) throw truncated();
      if (10 + (data[pos + 5]! >> 3) > ZSTD_WINDOWLOG_MAX) throw new ArchiveFormatError(`zstd frame at offset ${start} needs a window larger than 1 GiB`);
    }
    let p = pos + 5 + (singleSegment ? 0 : 1);
    const fcsBytes = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!;
    if (p + fcsBytes > len) throw truncated();
    let contentSize: number | null = null;
    if (fcsBytes === 1) contentSize = data[p]!;
    else if (fcsBytes === 2) contentSize = view.getUint16(p, true) + 256;
    else if (fcsBytes === 4) contentSize = view.getUint32(p, true);
    else if (fcsBytes === 8) {
      const big = view.getBigUint64(p, true);
      contentSize = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    }
    p += fcsBytes;
    for (;;) {
      if (p + 3 > len) throw truncated();
      const header = data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16);
      const last = header & 1;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      p += 3;
      if (type === 3) throw new ArchiveFormatError(`zstd frame at offset ${start} has a reserved block type`);
      p += type === 1 ? 1 : size; // RLE blocks store one byte regardless of their size
      if (p > len) throw truncated();
      if (last) break;
    }
    if (checksum) p += 4;
    if (p > len) throw truncated();
    frames.push({ start, end: p, contentSize });
    pos = p;
  }
  if (frames.length === 0) throw new ArchiveFormatError('zstd stream contains no data frames');
  return frames;
}

/**
 * zstd "stream": buffers everything (up to ZSTD_MAX_BYTES) and compresses on end, so zstd
 * can sit in the same pipelines as gzip. Memory use is the whole archive; see module comment.
 */
export function zstdCompressStream(level: number = ZSTD_LEVEL): Transform {
  return new BufferingTransform(ZSTD_MAX_BYTES, 'zstd input', (buf) => zstdCompress(buf, level));
}

/** Buffers the compressed input (up to ZSTD_MAX_BYTES) and emits the decompressed bytes on end. */
export function zstdDecompressStream(maxBytes: number = ZSTD_MAX_BYTES): Transform {
  return new BufferingTransform(ZSTD_MAX_BYTES, 'compressed zstd input', (buf) => zstdDecompress(buf, maxBytes));
}

class BufferingTransform extends Transform {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(
    private readonly limit: number,
    private readonly what: string,
    private readonly fn: (buf: Buffer) => Promise<Buffer>,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) {
      cb(new ArchiveSecurityError('decompressed-too-large', `${this.what} exceeds the ${this.limit}-byte zstd ceiling`));
      return;
    }
    this.chunks.push(chunk);
    cb();
  }
  override _flush(cb: TransformCallback): void {
    const input = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    this.fn(input).then(
      (out) => {
        for (let i = 0; i < out.length; i += SLICE) this.push(out.subarray(i, i + SLICE));
        cb();
      },
      (err: Error) => cb(err),
    );
  }
}

const SLICE = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// dispatch

/** A compressing transform for `compression` ('none' passes bytes through). */
export function compressStream(compression: Compression, opts: { zstdLevel?: number } = {}): Transform {
  switch (compression) {
    case 'none':
      return new Transform({ transform: (chunk, _enc, cb) => cb(null, chunk) });
    case 'gzip':
      return gzipStream();
    case 'zstd':
      return zstdCompressStream(opts.zstdLevel);
  }
}

export async function compressBuffer(data: Uint8Array, compression: Compression, opts: { zstdLevel?: number } = {}): Promise<Buffer> {
  switch (compression) {
    case 'none':
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    case 'gzip':
      return gzipBuffer(data);
    case 'zstd':
      return zstdCompress(data, opts.zstdLevel);
  }
}

/** Detects the compression of `data` and undoes it, refusing output over `maxBytes`. */
export async function decompressBuffer(data: Uint8Array, maxBytes: number): Promise<{ compression: Compression; data: Buffer }> {
  const compression = detectCompression(data.subarray(0, MAGIC_BYTES));
  switch (compression) {
    case 'none':
      if (data.byteLength > maxBytes) throw new ArchiveSecurityError('decompressed-too-large', `input exceeds ${maxBytes} bytes`);
      return { compression, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
    case 'gzip':
      return { compression, data: await gunzipBuffer(data, maxBytes) };
    case 'zstd':
      return { compression, data: await zstdDecompress(data, maxBytes) };
  }
}

/**
 * Sniffs the compression of a chunk stream and returns the decompressed chunks. gzip is
 * inflated lazily as the caller pulls; zstd is buffered (bounded by ZSTD_MAX_BYTES in and
 * `maxZstdBytes` out). Returning early from the iterator closes the source.
 */
export async function* decompressChunks(
  source: AsyncIterable<Uint8Array>,
  opts: { maxZstdBytes?: number; onDetect?: (c: Compression) => void } = {},
): AsyncGenerator<Buffer, void, undefined> {
  const it = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLen = 0;
  let ended = false;
  try {
    while (headLen < MAGIC_BYTES) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      const chunk = toBuffer(r.value);
      if (chunk.length === 0) continue;
      head.push(chunk);
      headLen += chunk.length;
    }
    const first = Buffer.concat(head, headLen);
    const compression = detectCompression(first.subarray(0, MAGIC_BYTES));
    opts.onDetect?.(compression);
    const rest = async function* (): AsyncGenerator<Buffer> {
      if (first.length > 0) yield first;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield toBuffer(r.value);
      }
    };
    if (compression === 'none') {
      yield* rest();
      return;
    }
    if (compression === 'zstd') {
      const maxOut = Math.min(opts.maxZstdBytes ?? ZSTD_MAX_BYTES, ZSTD_MAX_BYTES);
      // zstd never expands data by more than a few bytes per 128 KiB block, so input larger
      // than this cannot be a valid stream within budget; stop buffering it early.
      const maxIn = Math.min(ZSTD_MAX_BYTES, maxOut + (maxOut >> 7) + 1024 * 1024);
      const parts: Buffer[] = [];
      let size = 0;
      for await (const chunk of rest()) {
        size += chunk.length;
        if (size > maxIn) throw new ArchiveSecurityError('decompressed-too-large', `compressed zstd input exceeds ${maxIn} bytes`);
        parts.push(chunk);
      }
      const out = await zstdDecompress(Buffer.concat(parts, size), maxOut);
      for (let i = 0; i < out.length; i += SLICE) yield out.subarray(i, i + SLICE);
      return;
    }
    const gunzip = createGunzip();
    const input = Readable.from(rest());
    input.on('error', (err) => gunzip.destroy(err));
    input.pipe(gunzip);
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (err) {
      throw wrapZlibError(err);
    } finally {
      input.destroy();
      gunzip.destroy();
    }
  } finally {
    await it.return?.();
  }
}

function toBuffer(chunk: Uint8Array | string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk);
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

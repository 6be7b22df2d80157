import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ArchiveError, readTarEntries, type TarRawEntry } from '../archive';
import { sha256Stream } from '../lib/hash';
import { DigestMismatchError, fromArchiveError, ImageFormatError, LayerSecurityError, ScanLimitError, ScannerError, TruncatedArchiveError } from './errors';
import type { LayerRef, OpenedImage } from './oci';

/**
 * Layers → a virtual, in-memory view of the image's final filesystem.
 *
 * Nothing is extracted to disk: we keep the tree of paths (type, size, link target) and
 * the *content* only of files a detector asked for (`wants`). Security checks therefore
 * guard the model rather than the host, but are kept strict so the view can never
 * disagree with what a careless extractor would do: `..` components, absolute names,
 * links out of the root and writes through symlinks are refused outright.
 */

export interface LayerLimits {
  /** Bytes kept per file of interest; bigger files are skipped with a warning. */
  maxFileBytes: number;
  /** Total bytes of file content kept across the image. */
  maxTotalBytes: number;
  /** Total filesystem entries across all layers. */
  maxEntries: number;
}

export const DEFAULT_LIMITS: LayerLimits = {
  maxFileBytes: 64 << 20,
  maxTotalBytes: 512 << 20,
  maxEntries: 2_000_000,
};

export interface ReadFilesystemOptions {
  /** Which files (absolute image paths, e.g. "/var/lib/dpkg/status") to keep the content of. */
  wants: (path: string) => boolean;
  /** Files examined while they stream past (binaries, archives, databases): only their facts are kept. */
  extract?: FileExtractor;
  limits?: Partial<LayerLimits>;
}

/**
 * Looks at files too big or too many to keep (executables, jars, rpm databases) during the
 * one read of their layer and keeps only the small facts drawn from them.
 */
export interface FileExtractor {
  /** Examine this file? Decided from its path, permission bits and first bytes. */
  accepts(path: string, mode: number, head: Buffer): boolean;
  /** Facts from the whole content (errors are facts too: the extractor reports them, never throws). */
  extract(path: string, content: Buffer): Promise<unknown>;
}

export type NodeType = 'file' | 'dir' | 'symlink' | 'other';

export interface FsNode {
  type: NodeType;
  /** Index of the layer that last wrote this node. */
  layer: number;
  size: number;
  children?: Map<string, FsNode>;
  linkname?: string;
  content?: Buffer;
  /** What a FileExtractor drew from the file's content. */
  facts?: unknown;
}

export interface LayerStat {
  index: number;
  digest?: string;
  diffId: string;
  compression: 'gzip' | 'none';
  storedBytes: number;
  uncompressedBytes: number;
  entries: number;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_SYMLINK_HOPS = 40;

const toPath = (parts: readonly string[]) => `/${parts.join('/')}`;

function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

export class ImageFilesystem {
  readonly root: FsNode = { type: 'dir', layer: -1, size: 0, children: new Map() };
  readonly warnings: string[] = [];
  readonly layers: LayerStat[] = [];
  entryCount = 0;
  keptBytes = 0;
  private captured: string[] | undefined;
  private extracted: Array<[string, unknown]> | undefined;

  /** Find a node without following symlinks in any component. */
  lstat(path: string): FsNode | undefined {
    let node: FsNode | undefined = this.root;
    for (const c of splitPath(path)) {
      node = node?.children?.get(c);
      if (!node) return undefined;
    }
    return node;
  }

  /**
   * Find a node following symlinks the way the container would: absolute targets are
   * relative to the image root and `..` never climbs above it.
   */
  stat(path: string): FsNode | undefined {
    let hops = 0;
    const walk = (parts: string[]): FsNode | undefined => {
      const resolved: string[] = [];
      let node: FsNode = this.root;
      for (let i = 0; i < parts.length; i++) {
        const c = parts[i]!;
        if (c === '..') {
          resolved.pop();
          node = this.lstat(toPath(resolved))!;
          continue;
        }
        const child = node.children?.get(c);
        if (!child) return undefined;
        if (child.type === 'symlink' && child.linkname !== undefined) {
          if (++hops > MAX_SYMLINK_HOPS) return undefined;
          const target = child.linkname.startsWith('/') ? splitPath(child.linkname) : [...resolved, ...splitPath(child.linkname)];
          return walk([...target, ...parts.slice(i + 1)]);
        }
        resolved.push(c);
        node = child;
      }
      return node;
    };
    return walk(splitPath(path));
  }

  /** Content of a captured regular file (following symlinks), or undefined. */
  readFile(path: string): Buffer | undefined {
    const n = this.stat(path);
    return n?.type === 'file' ? n.content : undefined;
  }

  exists(path: string): boolean {
    return this.lstat(path) !== undefined;
  }

  /** Every path in the final filesystem, depth-first in sorted order. */
  *walk(): Generator<[string, FsNode]> {
    const stack: Array<[string[], FsNode]> = [[[], this.root]];
    while (stack.length) {
      const [parts, node] = stack.pop()!;
      if (parts.length) yield [toPath(parts), node];
      if (node.children) {
        const names = [...node.children.keys()].sort().reverse();
        for (const n of names) stack.push([[...parts, n], node.children.get(n)!]);
      }
    }
  }

  paths(): string[] {
    return [...this.walk()].map(([p]) => p);
  }

  /** Paths of regular files whose content was captured, sorted (cached: detectors ask repeatedly). */
  capturedFiles(): string[] {
    if (!this.captured) {
      const out: string[] = [];
      for (const [p, n] of this.walk()) if (n.type === 'file' && n.content) out.push(p);
      this.captured = out;
    }
    return [...this.captured];
  }

  /** Files of the final filesystem that a FileExtractor examined, with its facts, sorted by path. */
  extractedFiles(): Array<[string, unknown]> {
    if (!this.extracted) {
      const out: Array<[string, unknown]> = [];
      for (const [p, n] of this.walk()) if (n.type === 'file' && n.facts !== undefined) out.push([p, n.facts]);
      this.extracted = out;
    }
    return [...this.extracted];
  }

  /** Called after a layer is applied. */
  invalidate(): void {
    this.captured = undefined;
    this.extracted = undefined;
  }
}

type Pending =
  | { kind: 'file'; parts: string[]; size: number; content?: Buffer; oversize?: boolean; facts?: unknown }
  | { kind: 'dir'; parts: string[] }
  | { kind: 'symlink'; parts: string[]; linkname: string }
  | { kind: 'hardlink'; parts: string[]; target: string[] }
  | { kind: 'other'; parts: string[] }
  | { kind: 'whiteout'; parts: string[] }
  | { kind: 'opaque'; parts: string[] };

/** Validate and normalise a layer entry name; refuses absolute names and `..`. */
function entryParts(name: string, label: string): string[] {
  if (name.includes('\0')) throw new LayerSecurityError(name, 'NUL byte in name', label);
  if (name.startsWith('/')) throw new LayerSecurityError(name, 'absolute path', label);
  const raw = name.split('/');
  if (raw.includes('..')) throw new LayerSecurityError(name, 'path contains a ".." component', label);
  return raw.filter((c) => c !== '' && c !== '.');
}

function classify(header: TarRawEntry, label: string, wants: (p: string) => boolean, limits: LayerLimits): { pending: Pending; capture: boolean } | null {
  const parts = entryParts(header.path, label);
  if (parts.length === 0) return null; // "./": the root itself
  const base = parts[parts.length - 1]!;
  const dirParts = parts.slice(0, -1);
  if (base.startsWith(WHITEOUT)) {
    if (base === OPAQUE) return { pending: { kind: 'opaque', parts: dirParts }, capture: false };
    if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return null; // other AUFS metadata (.wh..wh.plnk etc.)
    const victim = base.slice(WHITEOUT.length);
    if (victim === '' || victim === '.' || victim === '..') throw new LayerSecurityError(header.path, 'malformed whiteout', label);
    return { pending: { kind: 'whiteout', parts: [...dirParts, victim] }, capture: false };
  }
  switch (header.type) {
    case 'file': {
      const size = header.size;
      if (!wants(toPath(parts))) return { pending: { kind: 'file', parts, size }, capture: false };
      // Wanted but too big: the path is recorded, the content is not read (a warning says so).
      if (size > limits.maxFileBytes) return { pending: { kind: 'file', parts, size, oversize: true }, capture: false };
      return { pending: { kind: 'file', parts, size }, capture: true };
    }
    case 'directory':
      return { pending: { kind: 'dir', parts }, capture: false };
    case 'symlink': {
      const linkname = header.linkname ?? '';
      if (linkname === '') throw new LayerSecurityError(header.path, 'symlink with empty target', label);
      if (linkname.includes('\0')) throw new LayerSecurityError(header.path, 'NUL byte in symlink target', label);
      if (!linkname.startsWith('/')) {
        // Relative targets are resolved lexically from the link's directory; climbing
        // above the root is a classic escape for naive extractors.
        let depth = dirParts.length;
        for (const c of linkname.split('/')) {
          if (c === '..') depth--;
          else if (c !== '' && c !== '.') depth++;
          if (depth < 0) throw new LayerSecurityError(header.path, `symlink target ${JSON.stringify(linkname)} points outside the image root`, label);
        }
      }
      // Absolute targets are root-relative inside the container (e.g. /etc/mtab -> /proc/mounts).
      return { pending: { kind: 'symlink', parts, linkname }, capture: false };
    }
    case 'hardlink': {
      const linkname = header.linkname ?? '';
      if (linkname === '' || linkname.startsWith('/') || linkname.split('/').includes('..') || linkname.includes('\0')) {
        throw new LayerSecurityError(header.path, `hard link target ${JSON.stringify(linkname)} points outside the image root`, label);
      }
      const target = splitPath(linkname);
      if (target.length === 0) throw new LayerSecurityError(header.path, 'hard link to the root', label);
      return { pending: { kind: 'hardlink', parts, target }, capture: false };
    }
    default:
      return { pending: { kind: 'other', parts }, capture: false };
  }
}

/** Output chunk of the layer gunzip: zlib's 16 KiB default costs a thread-pool round trip per 16 KiB. */
const GUNZIP_CHUNK = 256 * 1024;

/** Hand a file to the extractor if its first bytes interest it; otherwise its body is skipped unread. */
async function sniff(entry: TarRawEntry, path: string, extractor: FileExtractor): Promise<unknown> {
  const it = entry.data[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return undefined;
  if (!extractor.accepts(path, entry.mode, first.value)) {
    await it.return?.(); // ends the body read; the tar reader skips the rest
    return undefined;
  }
  const chunks: Buffer[] = [first.value];
  let n = first.value.length;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    n += r.value.length;
    if (n <= entry.size) chunks.push(r.value);
  }
  return extractor.extract(path, Buffer.concat(chunks));
}

async function collect(entry: AsyncIterable<Buffer>, expected: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of entry) {
    n += c.length;
    if (n <= expected) chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function describeLayer(layer: LayerRef): string {
  return `layer ${layer.index} (${layer.digest ?? layer.diffId ?? layer.name})`;
}

function hasPrefix(buf: Buffer, magic: number[]): boolean {
  return magic.every((b, i) => buf[i] === b);
}

/** Map low-level stream failures to scanner errors with a clear message. */
function translate(err: unknown, label: string): Error {
  if (err instanceof ScannerError) return err;
  if (err instanceof ArchiveError) return fromArchiveError(err, label) as Error;
  const e = err as NodeJS.ErrnoException;
  const msg = e?.message ?? String(err);
  if (msg === 'Unexpected end of data' || e?.code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(msg)) {
    return new TruncatedArchiveError(label, msg);
  }
  if (/Invalid tar header|unknown format/.test(msg)) return new ImageFormatError(`${label}: not a valid tar stream (${msg})`);
  if (e?.code === 'Z_DATA_ERROR' || /incorrect header check|invalid .* (length|distance|code)/i.test(msg)) {
    return new ImageFormatError(`${label}: corrupt gzip stream (${msg})`);
  }
  return err instanceof Error ? err : new Error(msg);
}

async function hashStored(image: OpenedImage, layer: LayerRef): Promise<string> {
  return (await sha256Stream(image.openLayer(layer))).digest;
}

async function readLayer(
  image: OpenedImage,
  layer: LayerRef,
  wants: (p: string) => boolean,
  limits: LayerLimits,
  extractor: FileExtractor | undefined,
): Promise<{ pending: Pending[]; stat: LayerStat }> {
  const label = describeLayer(layer);
  if (!layer.digest && !layer.diffId) throw new ImageFormatError(`${label}: no digest to verify against`);
  const compression = await layerCompression(image, layer, label);
  const tap = new LayerTap(layer, label);
  // The one tar codec (src/archive) reads the uncompressed stream: it checks every header
  // checksum, requires the end-of-archive marker and refuses data after it. Pre-POSIX (v7)
  // headers are accepted. Unread bodies are skipped.
  const done = pipeline([image.openLayer(layer), tap.stored, ...(compression === 'gzip' ? [createGunzip({ chunkSize: GUNZIP_CHUNK })] : []), tap.tar]);

  const pending: Pending[] = [];
  let failure = await readEntries(tap, label, { wants, limits, extractor }, pending);
  try {
    await done;
  } catch (e) {
    failure ??= e;
  }
  if (failure !== undefined) await throwLayerFailure(image, layer, label, compression, failure);

  const { stored, diffId } = tap.digests();
  if (layer.size !== undefined && tap.storedBytes !== layer.size)
    throw new DigestMismatchError(`${label} size`, `${layer.size} bytes`, `${tap.storedBytes} bytes`);
  if (layer.digest && stored !== layer.digest) throw new DigestMismatchError(label, layer.digest, stored);
  if (layer.diffId && diffId !== layer.diffId) throw new DigestMismatchError(`${label} uncompressed content (diff_id)`, layer.diffId, diffId);
  return {
    pending,
    stat: {
      index: layer.index,
      ...(layer.digest ? { digest: layer.digest } : {}),
      diffId,
      compression,
      storedBytes: tap.storedBytes,
      uncompressedBytes: tap.uncompressedBytes,
      entries: pending.length,
    },
  };
}

/** gzip or none, from the blob's magic bytes; zstd is refused. */
async function layerCompression(image: OpenedImage, layer: LayerRef, label: string): Promise<LayerStat['compression']> {
  const head = await image.peekLayer(layer, 4);
  if (hasPrefix(head, ZSTD_MAGIC)) throw new ImageFormatError(`${label}: zstd-compressed layers are not supported`);
  return hasPrefix(head, GZIP_MAGIC) ? 'gzip' : 'none';
}

/** Counts and hashes a layer on its way through: the blob as stored, and the tar after decompression. */
class LayerTap {
  storedBytes = 0;
  uncompressedBytes = 0;
  private readonly blobHash = createHash('sha256');
  private readonly diffHash = createHash('sha256');
  readonly stored: Transform;
  readonly tar: Transform;

  constructor(layer: LayerRef, label: string) {
    this.stored = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.storedBytes += chunk.length;
        // Stop reading as soon as the blob is longer than its descriptor says.
        if (layer.size !== undefined && this.storedBytes > layer.size) {
          return cb(new DigestMismatchError(`${label} size`, `${layer.size} bytes`, `more than ${layer.size} bytes`));
        }
        this.blobHash.update(chunk);
        cb(null, chunk);
      },
    });
    this.tar = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.uncompressedBytes += chunk.length;
        this.diffHash.update(chunk);
        cb(null, chunk);
      },
    });
  }

  digests(): { stored: string; diffId: string } {
    return { stored: `sha256:${this.blobHash.digest('hex')}`, diffId: `sha256:${this.diffHash.digest('hex')}` };
  }
}

/** Classifies the layer's entries into `pending` (capturing wanted files); returns what stopped it, if anything. */
async function readEntries(
  tap: LayerTap,
  label: string,
  how: { wants: (p: string) => boolean; limits: LayerLimits; extractor: FileExtractor | undefined },
  pending: Pending[],
): Promise<unknown> {
  const { wants, limits, extractor } = how;
  try {
    const entries = readTarEntries(tap.tar, {
      decompress: false,
      maxEntries: Number.MAX_SAFE_INTEGER,
      maxEntryBytes: Number.MAX_SAFE_INTEGER,
      maxTotalBytes: Number.MAX_SAFE_INTEGER,
    });
    for await (const entry of entries) {
      const c = classify(entry, label, wants, limits);
      if (c?.capture && c.pending.kind === 'file') c.pending.content = await collect(entry.data, c.pending.size);
      else if (extractor && c?.pending.kind === 'file' && !c.pending.oversize && entry.size >= 4 && entry.size <= limits.maxFileBytes) {
        const facts = await sniff(entry, toPath(c.pending.parts), extractor);
        if (facts !== undefined) c.pending.facts = facts;
      }
      if (c) pending.push(c.pending);
      if (pending.length > limits.maxEntries) throw new ScanLimitError(`${label} has more than ${limits.maxEntries} entries`);
    }
  } catch (e) {
    // An empty layer blob (no tar at all) is a layer that changes nothing.
    if (!(e instanceof ArchiveError && e.code === 'truncated' && tap.uncompressedBytes === 0)) return e;
  }
  return undefined;
}

/**
 * A blob that is not the one the manifest names is the more fundamental problem: report that
 * rather than whatever parse error its bytes happened to cause.
 */
async function throwLayerFailure(image: OpenedImage, layer: LayerRef, label: string, compression: LayerStat['compression'], failure: unknown): Promise<never> {
  const expected = layer.digest ?? (compression === 'none' ? layer.diffId : undefined);
  if (expected) {
    const actual = await hashStored(image, layer).catch(() => undefined);
    if (actual && actual !== expected) throw new DigestMismatchError(label, expected, actual);
  }
  throw translate(failure, label);
}

/** Apply one layer's changes on top of the lower layers (whiteouts first: they only hide lower content). */
function applyLayer(fs: ImageFilesystem, index: number, pending: Pending[], label: string, limits: LayerLimits): void {
  const parentOf = (parts: string[], entry: string, create: boolean): FsNode | undefined => {
    let node = fs.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const c = parts[i]!;
      let child = node.children!.get(c);
      if (child?.type === 'symlink') {
        throw new LayerSecurityError(entry, `would be written through symlink ${toPath(parts.slice(0, i + 1))} -> ${child.linkname}`, label);
      }
      if (child?.type !== 'dir') {
        if (!create) return undefined;
        // Implicit parent (tars need not list directories); a non-directory in the way is replaced, as overlayfs would.
        child = { type: 'dir', layer: index, size: 0, children: new Map() };
        node.children!.set(c, child);
        countEntry();
      }
      node = child;
    }
    return node;
  };
  const countEntry = () => {
    if (++fs.entryCount > limits.maxEntries) throw new ScanLimitError(`image has more than ${limits.maxEntries} filesystem entries`);
  };

  for (const p of pending) {
    if (p.kind === 'whiteout') {
      parentOf(p.parts, toPath(p.parts), false)?.children?.delete(p.parts[p.parts.length - 1]!);
    } else if (p.kind === 'opaque') {
      const dir = p.parts.length === 0 ? fs.root : parentOf(p.parts, toPath(p.parts), false)?.children?.get(p.parts[p.parts.length - 1]!);
      if (dir?.type === 'dir') dir.children = new Map();
    }
  }

  for (const p of pending) {
    if (p.kind === 'whiteout' || p.kind === 'opaque') continue;
    const path = toPath(p.parts);
    const parent = parentOf(p.parts, path, true)!;
    const name = p.parts[p.parts.length - 1]!;
    const existing = parent.children!.get(name);
    if (!existing) countEntry();
    switch (p.kind) {
      case 'dir':
        if (existing?.type === 'dir') existing.layer = index;
        else parent.children!.set(name, { type: 'dir', layer: index, size: 0, children: new Map() });
        break;
      case 'file': {
        const node: FsNode = { type: 'file', layer: index, size: p.size, ...(p.facts !== undefined ? { facts: p.facts } : {}) };
        if (p.content) {
          fs.keptBytes += p.content.length;
          if (fs.keptBytes > limits.maxTotalBytes) throw new ScanLimitError(`files of interest exceed ${limits.maxTotalBytes} bytes in total`);
          node.content = p.content;
        } else if (p.oversize) {
          fs.warnings.push(`${path}: ${p.size} bytes exceeds the ${limits.maxFileBytes}-byte limit for files of interest; not read`);
        }
        parent.children!.set(name, node);
        break;
      }
      case 'symlink':
        parent.children!.set(name, { type: 'symlink', layer: index, size: 0, linkname: p.linkname });
        break;
      case 'hardlink': {
        const tparent = parentOf(p.target, path, false);
        const target = tparent?.children?.get(p.target[p.target.length - 1]!);
        if (target?.type === 'dir') throw new LayerSecurityError(path, 'hard link to a directory', label);
        if (!target) {
          fs.warnings.push(`${path}: hard link target /${p.target.join('/')} not found in ${label}`);
          parent.children!.set(name, { type: 'file', layer: index, size: 0 });
        } else {
          // A hard link shares the target's inode: same type, size, content.
          parent.children!.set(name, { ...target, layer: index });
        }
        break;
      }
      case 'other':
        parent.children!.set(name, { type: 'other', layer: index, size: 0 });
        break;
    }
  }
}

/** Read every layer in order and return the merged filesystem view. */
export async function readImageFilesystem(image: OpenedImage, opts: ReadFilesystemOptions): Promise<ImageFilesystem> {
  const limits: LayerLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const fs = new ImageFilesystem();
  for (const layer of image.layers) {
    const { pending, stat } = await readLayer(image, layer, opts.wants, limits, opts.extract);
    applyLayer(fs, layer.index, pending, describeLayer(layer), limits);
    fs.invalidate();
    fs.layers.push(stat);
  }
  return fs;
}

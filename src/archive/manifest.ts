/**
 * Manifest archives: a deterministic tar whose `manifest.json` lists every other file with its
 * sha256 and size, so the archive can be verified (and its manifest digest signed) on its own.
 *
 * Layout: the listed files in path byte order, then `manifest.json` as the LAST entry. Putting
 * it last lets a streaming writer hash bodies as they pass and emit the manifest at the end,
 * without knowing digests in advance; readers must see every body to verify anyway.
 *
 * manifest.json is canonical JSON (src/core/canonical.ts):
 *   { "schema": "stella.archive-manifest/v1", "kind": "...", "createdAt": "<ISO-8601 UTC>",
 *     "entries": [{ "path", "sha256": "sha256:<hex>", "size", "mediaType"?, "meta"? }, ...],
 *     "meta"?: {...} }
 * with entries sorted by path byte order. Directories are never listed (nor written).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { canonicalJson } from '../lib/canonical';
import { isDigest, sha256Digest, sha256Stream } from '../lib/hash';
import { ArchiveError, ArchiveFormatError } from './errors';
import { archivePathProblem, comparePaths } from './paths';
import { compressBuffer, type Compression } from './compress';
import { createTarStream, writeStreamAtomically, type TarFileSource, type TarStream } from './tar-write';
import { readTar, type TarInput, type TarReadOptions } from './tar-read';

export const MANIFEST_PATH = 'manifest.json';
export const MANIFEST_SCHEMA = 'stella.archive-manifest/v1';
export const MANIFEST_MEDIA_TYPE = 'application/vnd.stella.archive-manifest.v1+json';
/** Upper bound on manifest.json itself when reading (about 200k entries). */
export const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;
const KIND_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export interface ManifestEntry {
  path: string;
  /** `sha256:<hex>` digest of the entry body. */
  sha256: string;
  size: number;
  mediaType?: string;
  meta?: Record<string, unknown>;
}

export interface ArchiveManifest {
  schema: typeof MANIFEST_SCHEMA;
  /** What the archive is, e.g. `replay-input`, `replay-output`, `evidence-pack`, `backup`. */
  kind: string;
  /** ISO-8601 UTC timestamp supplied by the caller (never read from the clock here, for determinism). */
  createdAt: string;
  entries: ManifestEntry[];
  meta?: Record<string, unknown>;
}

const metaSchema = z.record(z.string(), z.unknown());
const entrySchema = z
  .object({
    path: z.string().refine((p) => archivePathProblem(p) === null && p !== MANIFEST_PATH, { message: 'invalid entry path' }),
    sha256: z.string().refine(isDigest, { message: 'expected sha256:<64 hex>' }),
    size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    mediaType: z.string().min(1).max(255).optional(),
    meta: metaSchema.optional(),
  })
  .strict();
const manifestSchema = z
  .object({
    schema: z.literal(MANIFEST_SCHEMA),
    kind: z.string().regex(KIND_RE, 'kind must be a lowercase identifier such as replay-input'),
    createdAt: z.iso.datetime(),
    entries: z.array(entrySchema),
    meta: metaSchema.optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    for (let i = 1; i < m.entries.length; i++) {
      if (comparePaths(m.entries[i - 1]!.path, m.entries[i]!.path) >= 0) {
        ctx.addIssue({ code: 'custom', path: ['entries', i, 'path'], message: 'entries must be sorted by path with no duplicates' });
        return;
      }
    }
  });

export interface ManifestOptions {
  kind: string;
  /** Required so the same inputs always give the same archive; pass the workflow's clock. */
  createdAt: string | Date;
  meta?: Record<string, unknown>;
}

/** Validated manifest with entries sorted; throws ArchiveError on duplicates or bad fields. */
export function buildManifest(opts: ManifestOptions, entries: readonly ManifestEntry[]): ArchiveManifest {
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path));
  const candidate = {
    schema: MANIFEST_SCHEMA,
    kind: opts.kind,
    createdAt: typeof opts.createdAt === 'string' ? opts.createdAt : opts.createdAt.toISOString(),
    entries: sorted.map((e) => dropUndefined({ path: e.path, sha256: e.sha256, size: e.size, mediaType: e.mediaType, meta: e.meta })),
    ...(opts.meta === undefined ? {} : { meta: opts.meta }),
  };
  const parsed = manifestSchema.safeParse(candidate);
  if (!parsed.success) throw new ArchiveError('invalid-manifest', `invalid manifest: ${z.prettifyError(parsed.error)}`);
  // Round-trip through canonical JSON so `meta` holds exactly what will be serialised.
  return JSON.parse(canonicalJson(parsed.data)) as ArchiveManifest;
}

export function serializeManifest(manifest: ArchiveManifest): Buffer {
  return Buffer.from(canonicalJson(manifest), 'utf8');
}

/** Parses and validates manifest bytes; throws ArchiveFormatError. */
export function parseManifest(bytes: Buffer | string): ArchiveManifest {
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ArchiveFormatError(`manifest is not valid JSON (${(err as Error).message})`, MANIFEST_PATH);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) throw new ArchiveFormatError(`invalid manifest: ${z.prettifyError(parsed.error)}`, MANIFEST_PATH);
  return parsed.data as ArchiveManifest;
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---------------------------------------------------------------------------------------------
// writing

export interface ManifestFileOptions {
  mediaType?: string;
  meta?: Record<string, unknown>;
  /** Expected `sha256:<hex>` of the body (e.g. its blob id); a mismatch aborts the archive. */
  sha256?: string;
}

export interface ManifestTarStream {
  /** The archive bytes (uncompressed tar); pipe before adding. */
  readonly readable: Readable;
  /** Adds a file (strictly increasing path order), hashing it as it streams. */
  addFile(path: string, size: number, source: TarFileSource, opts?: ManifestFileOptions): Promise<ManifestEntry>;
  /** Appends manifest.json and ends the archive. */
  finalize(): Promise<{ manifest: ArchiveManifest; manifestSha256: string }>;
  abort(err?: Error): void;
}

export interface ManifestArchiveOptions extends ManifestOptions {
  /** tar mtime for every entry (seconds); default 0. */
  mtime?: number;
}

export function createManifestTarStream(opts: ManifestArchiveOptions): ManifestTarStream {
  return new ManifestWriter(opts, createTarStream({ mtime: opts.mtime }));
}

class ManifestWriter implements ManifestTarStream {
  private readonly entries: ManifestEntry[] = [];
  constructor(
    private readonly opts: ManifestArchiveOptions,
    private readonly tar: TarStream,
  ) {
    buildManifest(opts, []); // validate kind/createdAt/meta before any bytes are produced
  }

  get readable(): Readable {
    return this.tar.readable;
  }

  async addFile(path: string, size: number, source: TarFileSource, fileOpts: ManifestFileOptions = {}): Promise<ManifestEntry> {
    if (path === MANIFEST_PATH) throw new ArchiveError('invalid-manifest', `${MANIFEST_PATH} is reserved for the archive manifest`, path);
    if (fileOpts.sha256 !== undefined && !isDigest(fileOpts.sha256)) throw new ArchiveError('misuse', `expected sha256 is not a sha256:<hex> digest`, path);
    const hash = createHash('sha256');
    await this.tar.addFile(path, size, hashing(source, hash));
    const sha256 = `sha256:${hash.digest('hex')}`;
    if (fileOpts.sha256 !== undefined && fileOpts.sha256 !== sha256) {
      const err = new ArchiveError('hash-mismatch', `content hashes to ${sha256}, expected ${fileOpts.sha256}`, path);
      this.tar.abort(err);
      throw err;
    }
    const entry = dropUndefined({ path, sha256, size, mediaType: fileOpts.mediaType, meta: fileOpts.meta });
    this.entries.push(entry);
    return entry;
  }

  async finalize(): Promise<{ manifest: ArchiveManifest; manifestSha256: string }> {
    let manifest: ArchiveManifest;
    try {
      manifest = buildManifest(this.opts, this.entries);
    } catch (err) {
      this.tar.abort(err as Error);
      throw err;
    }
    const bytes = serializeManifest(manifest);
    await this.tar.addTrailer(MANIFEST_PATH, bytes);
    await this.tar.finalize();
    return { manifest, manifestSha256: sha256Digest(bytes) };
  }

  abort(err?: Error): void {
    this.tar.abort(err);
  }
}

/** Passes the body through unchanged while feeding `hash`. */
async function* hashing(source: TarFileSource, hash: ReturnType<typeof createHash>): AsyncGenerator<Uint8Array> {
  if (typeof source === 'string' || source instanceof Uint8Array) {
    const buf = typeof source === 'string' ? Buffer.from(source, 'utf8') : source;
    hash.update(buf);
    yield buf;
    return;
  }
  for await (const chunk of source as AsyncIterable<Uint8Array | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    hash.update(buf);
    yield buf;
  }
}

export interface ManifestArchiveInput {
  path: string;
  data: Buffer | Uint8Array | string;
  mediaType?: string;
  meta?: Record<string, unknown>;
}

export interface ManifestArchiveResult {
  /** The archive, compressed as requested. */
  archive: Buffer;
  manifest: ArchiveManifest;
  /** `sha256:<hex>` of the manifest.json bytes: the value to sign or record. */
  manifestSha256: string;
}

/**
 * Builds a manifest archive in memory from entries in any order (sorted here). Same bytes as
 * the streaming writer for the same entries. For replay bundles and other small archives.
 */
export async function writeManifestArchive(
  entries: readonly ManifestArchiveInput[],
  opts: ManifestArchiveOptions & { compression?: Compression; zstdLevel?: number },
): Promise<ManifestArchiveResult> {
  const sorted = [...entries].sort((a, b) => comparePaths(a.path, b.path));
  const writer = createManifestTarStream(opts);
  const parts: Buffer[] = [];
  writer.readable.on('data', (chunk: Buffer) => parts.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    writer.readable.once('end', resolve);
    writer.readable.once('error', reject);
  });
  ended.catch(() => {});
  let result: { manifest: ArchiveManifest; manifestSha256: string };
  try {
    for (const e of sorted) {
      const data = typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data;
      await writer.addFile(e.path, data.byteLength, data, { mediaType: e.mediaType, meta: e.meta });
    }
    result = await writer.finalize();
    await ended;
  } catch (err) {
    writer.abort(err as Error);
    throw err;
  }
  const tar = Buffer.concat(parts);
  return { archive: await compressBuffer(tar, opts.compression ?? 'none', { zstdLevel: opts.zstdLevel }), ...result };
}

/**
 * Streams a manifest archive to `dest` atomically (temp file, fsync, rename). `fill` adds
 * files in strictly increasing path order; the manifest is appended when it returns.
 */
export async function writeManifestArchiveFile(
  dest: string,
  opts: ManifestArchiveOptions & { compression?: Compression; zstdLevel?: number },
  fill: (writer: Pick<ManifestTarStream, 'addFile'>) => Promise<void>,
): Promise<{ manifest: ArchiveManifest; manifestSha256: string }> {
  const writer = createManifestTarStream(opts);
  let result: { manifest: ArchiveManifest; manifestSha256: string } | undefined;
  await writeStreamAtomically(
    dest,
    writer.readable,
    opts,
    async () => {
      await fill({ addFile: (path, size, source, fileOpts) => writer.addFile(path, size, source, fileOpts) });
      result = await writer.finalize();
    },
    (err) => writer.abort(err),
  );
  return result!;
}

// ---------------------------------------------------------------------------------------------
// verification

export type ManifestProblemReason = 'digest-mismatch' | 'missing' | 'unlisted' | 'size-mismatch' | 'invalid-manifest';

export interface ManifestProblem {
  path: string;
  reason: ManifestProblemReason;
  expected?: string | number;
  actual?: string | number;
  detail?: string;
}

export interface ManifestVerification {
  ok: boolean;
  /** Null when manifest.json is missing or invalid. */
  manifest: ArchiveManifest | null;
  /** `sha256:<hex>` of the manifest.json bytes as found, when present. */
  manifestSha256: string | null;
  /** Sorted by path; empty when ok. */
  problems: ManifestProblem[];
}

/**
 * Verifies a manifest archive in one streaming pass: every body is hashed as it is read,
 * manifest.json is parsed wherever it appears, and the two are compared at the end.
 * Content problems are reported in `problems`; unsafe or damaged archives throw
 * (ArchiveSecurityError / ArchiveFormatError) because nothing in them can be trusted.
 */
export async function verifyManifestArchive(input: TarInput, limits: TarReadOptions = {}): Promise<ManifestVerification> {
  const seen = new Map<string, { sha256: string; size: number }>();
  let manifestBytes: Buffer | null = null;
  for await (const entry of readTar(input, limits)) {
    if (entry.type !== 'file') continue;
    if (entry.path === MANIFEST_PATH) {
      if (entry.size > MAX_MANIFEST_BYTES) throw new ArchiveFormatError(`manifest exceeds ${MAX_MANIFEST_BYTES} bytes`, MANIFEST_PATH);
      manifestBytes = await entry.buffer();
      continue;
    }
    const { digest: sha256, size } = await sha256Stream(Readable.from(entry.data, { objectMode: false }));
    seen.set(entry.path, { sha256, size });
  }

  if (!manifestBytes) {
    return { ok: false, manifest: null, manifestSha256: null, problems: [{ path: MANIFEST_PATH, reason: 'missing' }] };
  }
  const manifestSha256 = sha256Digest(manifestBytes);
  let manifest: ArchiveManifest;
  try {
    manifest = parseManifest(manifestBytes);
  } catch (err) {
    return { ok: false, manifest: null, manifestSha256, problems: [{ path: MANIFEST_PATH, reason: 'invalid-manifest', detail: (err as Error).message }] };
  }

  const problems: ManifestProblem[] = [];
  for (const e of manifest.entries) {
    const actual = seen.get(e.path);
    if (!actual) problems.push({ path: e.path, reason: 'missing' });
    else if (actual.size !== e.size) problems.push({ path: e.path, reason: 'size-mismatch', expected: e.size, actual: actual.size });
    else if (actual.sha256 !== e.sha256) problems.push({ path: e.path, reason: 'digest-mismatch', expected: e.sha256, actual: actual.sha256 });
    seen.delete(e.path);
  }
  for (const path of seen.keys()) problems.push({ path, reason: 'unlisted' });
  problems.sort((a, b) => comparePaths(a.path, b.path));
  return { ok: problems.length === 0, manifest, manifestSha256, problems };
}

import { createReadStream } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { sha256Digest } from '../lib/hash';
import { normaliseMemberName, TarIndex } from '../archive';
import { DigestMismatchError, fromArchiveError, ImageFormatError, ImageRefError, LayerSecurityError, ScanLimitError } from './errors';

/**
 * Opening an image: find the image manifest (the artifact digest), its config and the
 * ordered layer list, verifying every JSON blob against its descriptor on the way.
 * Layer bytes are verified while they are streamed (see layers.ts), so nothing here
 * reads a layer into memory.
 */

export type ImageFormat = 'oci-layout' | 'oci-archive' | 'docker-archive';

export interface Platform {
  os?: string;
  architecture?: string;
  variant?: string;
}

export interface LayerRef {
  index: number;
  /** Member/file name inside the layout or archive. */
  name: string;
  /** Digest of the stored (possibly compressed) bytes, when the format records one. */
  digest?: string;
  /** Uncompressed digest from the image config (rootfs.diff_ids). */
  diffId?: string;
  size?: number;
  mediaType?: string;
}

export interface OpenedImage {
  path: string;
  format: ImageFormat;
  /** Artifact digest: the image manifest digest (or the config digest for legacy `docker save`, which has no manifest). */
  digest: string;
  digestKind: 'manifest' | 'config';
  mediaType: string;
  /** The name that selected this image, or its only recorded name. */
  ref?: string;
  /** Every name recorded for the selected image. */
  refs: string[];
  configDigest: string;
  config: Record<string, unknown>;
  platform: Platform;
  layers: LayerRef[];
  /** Stream the stored bytes of a layer. */
  openLayer(layer: LayerRef): Readable;
  /** First bytes of a layer, to detect compression before streaming. */
  peekLayer(layer: LayerRef, n: number): Promise<Buffer>;
  close(): Promise<void>;
}

export interface OpenImageOptions {
  /** Select a manifest by `org.opencontainers.image.ref.name` / `io.containerd.image.name` / docker RepoTags. */
  ref?: string;
  /** For multi-platform indexes: "os/arch[/variant]"; default linux/amd64. */
  platform?: string;
  /** Bound on any single JSON document (index, manifest, config). */
  maxJsonBytes?: number;
}

/** Manifest, index and config media types of OCI images and Docker's v2 schema (the registry client reads the same). */
export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLegacy: 'application/vnd.docker.legacy-save+json',
};
const INDEX_TYPES = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);
const MANIFEST_TYPES = new Set([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
const CONFIG_TYPES = new Set([MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig]);
const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';
const DEFAULT_MAX_JSON = 8 << 20;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** Uniform read access to a layout directory or an archive. Names are archive-relative. */
interface BlobSource {
  label: string;
  has(name: string): Promise<boolean>;
  read(name: string, maxBytes: number): Promise<Buffer>;
  peek(name: string, n: number): Promise<Buffer>;
  stream(name: string): Readable;
  close(): Promise<void>;
}

function safeName(name: string, label: string): string {
  // Names come from attacker-controlled JSON (docker manifest.json "Layers"): refuse escapes.
  if (typeof name !== 'string' || name === '' || name.startsWith('/') || name.split('/').includes('..') || name.includes('\0')) {
    throw new LayerSecurityError(String(name), 'path escapes the image layout', label);
  }
  return normaliseMemberName(name);
}

class DirSource implements BlobSource {
  private constructor(
    readonly label: string,
    private readonly root: string,
  ) {}

  static async open(dir: string): Promise<DirSource> {
    return new DirSource(dir, await realpath(dir));
  }

  private async resolve(name: string): Promise<string> {
    const p = join(this.root, safeName(name, this.label));
    // A symlink inside the layout pointing elsewhere on the host is not part of the image.
    const real = await realpath(p).catch(() => undefined);
    if (real === undefined) throw new ImageFormatError(`${this.label}: missing ${name}`);
    if (real !== this.root && !real.startsWith(this.root + sep)) throw new LayerSecurityError(name, 'resolves outside the layout directory', this.label);
    return real;
  }

  async has(name: string): Promise<boolean> {
    try {
      return (await stat(await this.resolve(name))).isFile();
    } catch (e) {
      if (e instanceof LayerSecurityError) throw e;
      return false;
    }
  }

  async read(name: string, maxBytes: number): Promise<Buffer> {
    const p = await this.resolve(name);
    const st = await stat(p);
    if (st.size > maxBytes) throw new ScanLimitError(`${this.label}: ${name} is ${st.size} bytes, limit ${maxBytes}`);
    const fh = await open(p, 'r');
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  async peek(name: string, n: number): Promise<Buffer> {
    const fh = await open(await this.resolve(name), 'r');
    try {
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, 0);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  stream(name: string): Readable {
    // resolve() is async; hand back a stream that errors if resolution fails.
    return Readable.from(
      (async function* (self: DirSource) {
        const p = await self.resolve(name);
        yield* createReadStream(p, { highWaterMark: 1 << 20 });
      })(this),
      { objectMode: false },
    );
  }

  async close(): Promise<void> {}
}

class TarSource implements BlobSource {
  constructor(private readonly index: TarIndex) {}

  get label(): string {
    return this.index.path;
  }

  private member(name: string) {
    const m = this.index.resolve(safeName(name, this.label));
    if (m?.type !== 'file') throw new ImageFormatError(`${this.label}: missing ${name}`);
    return m;
  }

  async has(name: string): Promise<boolean> {
    return this.index.resolve(safeName(name, this.label))?.type === 'file';
  }

  async read(name: string, maxBytes: number): Promise<Buffer> {
    const m = this.member(name);
    if (m.size > maxBytes) throw new ScanLimitError(`${this.label}: ${name} is ${m.size} bytes, limit ${maxBytes}`);
    return this.range(m.offset, m.size);
  }

  async peek(name: string, n: number): Promise<Buffer> {
    const m = this.member(name);
    return this.range(m.offset, Math.min(n, m.size));
  }

  private async range(offset: number, size: number): Promise<Buffer> {
    const fh = await open(this.index.path, 'r');
    try {
      const buf = Buffer.alloc(size);
      const { bytesRead } = await fh.read(buf, 0, size, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  stream(name: string): Readable {
    const m = this.member(name);
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.index.path, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  }

  async close(): Promise<void> {}
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ImageFormatError(`${what}: invalid JSON (${(e as Error).message})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v) || typeof v.digest !== 'string') throw new ImageFormatError(`${what}: malformed descriptor`);
  if (!DIGEST_RE.test(v.digest)) throw new ImageFormatError(`${what}: unsupported or malformed digest ${JSON.stringify(v.digest)} (only sha256 is supported)`);
  if (v.size !== undefined && (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0))
    throw new ImageFormatError(`${what}: malformed size`);
  return v as unknown as Descriptor;
}

function blobName(digest: string): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}

async function readVerified(
  src: BlobSource,
  name: string,
  desc: Descriptor | undefined,
  what: string,
  maxBytes: number,
): Promise<{ bytes: Buffer; json: unknown; digest: string }> {
  const bytes = await src.read(name, maxBytes);
  const digest = sha256Digest(bytes);
  if (desc) {
    if (digest !== desc.digest) throw new DigestMismatchError(what, desc.digest, digest);
    if (desc.size !== undefined && desc.size !== bytes.length) throw new DigestMismatchError(`${what} size`, `${desc.size} bytes`, `${bytes.length} bytes`);
  }
  return { bytes, json: parseJson(bytes, what), digest };
}

function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new ImageFormatError(`platform must be "os/arch[/variant]", got ${JSON.stringify(s)}`);
  return { os, architecture, ...(variant ? { variant } : {}) };
}

function descriptorNames(d: Descriptor): string[] {
  const a = d.annotations ?? {};
  return [a[REF_NAME], a[CONTAINERD_NAME]].filter((x): x is string => typeof x === 'string' && x !== '');
}

/** Does `ref` name this image? Exact match, or a fully qualified name ending in "/<ref>". */
function refMatches(ref: string, names: string[]): boolean {
  return names.some((n) => n === ref || n.endsWith(`/${ref}`));
}

async function resolveOci(src: BlobSource, opts: OpenImageOptions, maxJson: number) {
  if (!(await src.has('index.json'))) throw new ImageFormatError(`${src.label}: oci-layout present but index.json missing`);
  const layout = parseJson(await src.read('oci-layout', 64 << 10), 'oci-layout');
  if (!isObject(layout) || typeof layout.imageLayoutVersion !== 'string') throw new ImageFormatError(`${src.label}: malformed oci-layout`);
  const index = parseJson(await src.read('index.json', maxJson), 'index.json');
  if (!isObject(index) || !Array.isArray(index.manifests)) throw new ImageFormatError(`${src.label}: index.json has no manifests array`);
  const top = index.manifests.map((m, i) => asDescriptor(m, `index.json manifests[${i}]`));
  if (top.length === 0) throw new ImageFormatError(`${src.label}: index.json lists no manifests`);

  const available = [...new Set(top.flatMap(descriptorNames))].sort();
  let chosen: Descriptor[];
  if (opts.ref !== undefined) {
    chosen = top.filter((d) => refMatches(opts.ref!, descriptorNames(d)));
    if (chosen.length === 0) throw new ImageRefError(`${src.label}: no manifest named ${JSON.stringify(opts.ref)}`, available);
  } else {
    chosen = top;
  }
  const distinct = [...new Map(chosen.map((d) => [d.digest, d])).values()];
  if (distinct.length !== 1) {
    throw new ImageRefError(
      `${src.label}: index.json holds ${distinct.length} different manifests${opts.ref ? ` named ${JSON.stringify(opts.ref)}` : ''}; pass ref to choose`,
      available,
      'BAD_INPUT',
    );
  }
  const selected = distinct[0]!;
  const refs = [...new Set(chosen.flatMap(descriptorNames))].sort();
  // Prefer the fully qualified containerd name over a bare tag for display.
  const primary = chosen.map((d) => d.annotations?.[CONTAINERD_NAME]).find((n) => n) ?? chosen.map((d) => d.annotations?.[REF_NAME]).find((n) => n);
  const want = parsePlatform(opts.platform ?? 'linux/amd64');

  let desc = selected;
  for (let depth = 0; ; depth++) {
    if (depth > 4) throw new ImageFormatError(`${src.label}: image indexes nested too deeply`);
    const { json, digest } = await readVerified(src, blobName(desc.digest), desc, `manifest ${desc.digest}`, maxJson);
    if (!isObject(json)) throw new ImageFormatError(`manifest ${digest}: not a JSON object`);
    const mediaType =
      (typeof json.mediaType === 'string' ? json.mediaType : undefined) ??
      desc.mediaType ??
      (Array.isArray(json.manifests) ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
    if (INDEX_TYPES.has(mediaType) || (Array.isArray(json.manifests) && !Array.isArray(json.layers))) {
      const children = (Array.isArray(json.manifests) ? json.manifests : []).map((m, i) => asDescriptor(m, `index ${digest} manifests[${i}]`));
      // BuildKit attaches attestation manifests with platform unknown/unknown: never images.
      const images = children.filter((c) => c.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' && c.platform?.os !== 'unknown');
      const match = images.filter(
        (c) => c.platform?.os === want.os && c.platform?.architecture === want.architecture && (!want.variant || c.platform?.variant === want.variant),
      );
      const pick = match[0] ?? (images.length === 1 ? images[0] : undefined);
      if (!pick) {
        const plats = images.map((c) => [c.platform?.os, c.platform?.architecture, c.platform?.variant].filter(Boolean).join('/'));
        throw new ImageRefError(`index ${digest} has no manifest for platform ${opts.platform ?? 'linux/amd64'}`, plats);
      }
      desc = pick;
      continue;
    }
    if (!MANIFEST_TYPES.has(mediaType) && !(Array.isArray(json.layers) && isObject(json.config))) {
      throw new ImageFormatError(`manifest ${digest}: unsupported media type ${mediaType}`);
    }
    return { manifest: json, digest, mediaType, refs, primary };
  }
}

export async function openImage(path: string, opts: OpenImageOptions = {}): Promise<OpenedImage> {
  const maxJson = opts.maxJsonBytes ?? DEFAULT_MAX_JSON;
  const st = await stat(path).catch(() => {
    throw new ImageFormatError(`image path ${path} does not exist`);
  });
  let src: BlobSource;
  let isArchive = false;
  if (st.isDirectory()) {
    src = await DirSource.open(path);
  } else if (st.isFile()) {
    const fh = await open(path, 'r');
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0).finally(() => fh.close());
    if (head[0] === 0x1f && head[1] === 0x8b) {
      throw new ImageFormatError(`${path} is gzip-compressed; decompress the image archive first (random access is needed)`);
    }
    src = new TarSource(await TarIndex.open(path).catch((e: unknown) => Promise.reject(fromArchiveError(e, `image archive ${path}`))));
    isArchive = true;
  } else {
    throw new ImageFormatError(`${path} is neither a directory nor a file`);
  }

  try {
    const hasLayout = await src.has('oci-layout');
    const hasDockerManifest = await src.has('manifest.json');
    if (hasLayout) {
      // Docker >= 25 `docker save` is an OCI layout plus a legacy manifest.json; the OCI index is authoritative.
      const format: ImageFormat = !isArchive ? 'oci-layout' : hasDockerManifest ? 'docker-archive' : 'oci-archive';
      const { manifest, digest, mediaType, refs, primary } = await resolveOci(src, opts, maxJson);
      const configDesc = asDescriptor(manifest.config, `manifest ${digest} config`);
      if (configDesc.mediaType && !CONFIG_TYPES.has(configDesc.mediaType)) {
        throw new ImageFormatError(`manifest ${digest} is not a container image (config media type ${configDesc.mediaType})`);
      }
      const { json: config } = await readVerified(src, blobName(configDesc.digest), configDesc, `config ${configDesc.digest}`, maxJson);
      if (!isObject(config)) throw new ImageFormatError(`config ${configDesc.digest}: not a JSON object`);
      const layerDescs = (manifest.layers as unknown[]).map((l, i) => asDescriptor(l, `manifest ${digest} layers[${i}]`));
      const diffIds = diffIdsOf(config);
      const layers: LayerRef[] = layerDescs.map((d, i) => ({
        index: i,
        name: blobName(d.digest),
        digest: d.digest,
        ...(d.size !== undefined ? { size: d.size } : {}),
        ...(d.mediaType ? { mediaType: d.mediaType } : {}),
        ...(diffIds && diffIds.length === layerDescs.length ? { diffId: diffIds[i] } : {}),
      }));
      return finish(src, path, format, digest, 'manifest', mediaType, refs, opts.ref ?? primary, configDesc.digest, config, layers);
    }
    if (hasDockerManifest) return await openDockerLegacy(src, path, opts, maxJson);
    throw new ImageFormatError(`${path}: not an OCI image layout (no oci-layout) nor a docker save archive (no manifest.json)`);
  } catch (e) {
    await src.close();
    throw e;
  }
}

function diffIdsOf(config: Record<string, unknown>): string[] | undefined {
  const rootfs = config.rootfs;
  if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids)) return undefined;
  const ids = rootfs.diff_ids;
  if (!ids.every((x): x is string => typeof x === 'string' && DIGEST_RE.test(x))) throw new ImageFormatError('config rootfs.diff_ids holds a malformed digest');
  return ids;
}

async function openDockerLegacy(src: BlobSource, path: string, opts: OpenImageOptions, maxJson: number): Promise<OpenedImage> {
  const manifest = parseJson(await src.read('manifest.json', maxJson), 'manifest.json');
  if (!Array.isArray(manifest) || manifest.length === 0) throw new ImageFormatError(`${path}: manifest.json is not a non-empty array`);
  const entries = manifest.map((m, i) => {
    if (!isObject(m) || typeof m.Config !== 'string' || !Array.isArray(m.Layers) || !m.Layers.every((l) => typeof l === 'string')) {
      throw new ImageFormatError(`${path}: manifest.json[${i}] is malformed`);
    }
    const tags = Array.isArray(m.RepoTags) ? m.RepoTags.filter((t): t is string => typeof t === 'string') : [];
    return { config: m.Config, layers: m.Layers as string[], tags };
  });
  const available = [...new Set(entries.flatMap((e) => e.tags))].sort();
  let chosen = entries;
  if (opts.ref !== undefined) {
    chosen = entries.filter((e) => refMatches(opts.ref!, e.tags) || e.tags.some((t) => t.endsWith(`:${opts.ref}`)));
    if (chosen.length === 0) throw new ImageRefError(`${path}: no image tagged ${JSON.stringify(opts.ref)}`, available);
  }
  const distinct = [...new Map(chosen.map((e) => [e.config, e])).values()];
  if (distinct.length !== 1) throw new ImageRefError(`${path}: manifest.json holds ${distinct.length} images; pass ref to choose`, available, 'BAD_INPUT');
  const entry = distinct[0]!;

  // Legacy archives carry no manifest: the config digest (image ID) is the only content address.
  const configName = safeName(entry.config, path);
  const bytes = await src.read(configName, maxJson);
  const configDigest = sha256Digest(bytes);
  const named = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(configName);
  if (named && `sha256:${named[1]}` !== configDigest) throw new DigestMismatchError(`config ${configName}`, `sha256:${named[1]}`, configDigest);
  const config = parseJson(bytes, `config ${configName}`);
  if (!isObject(config)) throw new ImageFormatError(`config ${configName}: not a JSON object`);
  const diffIds = diffIdsOf(config);
  if (!diffIds || diffIds.length !== entry.layers.length) {
    throw new ImageFormatError(`${path}: config rootfs.diff_ids does not list one digest per layer, cannot verify layers`);
  }
  const layers: LayerRef[] = entry.layers.map((l, i) => {
    const name = safeName(l, path);
    const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
    return { index: i, name, diffId: diffIds[i], ...(blob ? { digest: `sha256:${blob[1]}` } : {}) };
  });
  const refs = [...new Set(chosen.flatMap((e) => e.tags))].sort();
  return finish(src, path, 'docker-archive', configDigest, 'config', MEDIA_TYPES.dockerLegacy, refs, opts.ref ?? entry.tags[0], configDigest, config, layers);
}

function finish(
  src: BlobSource,
  path: string,
  format: ImageFormat,
  digest: string,
  digestKind: 'manifest' | 'config',
  mediaType: string,
  refs: string[],
  ref: string | undefined,
  configDigest: string,
  config: Record<string, unknown>,
  layers: LayerRef[],
): OpenedImage {
  const platform: Platform = {};
  if (typeof config.os === 'string') platform.os = config.os;
  if (typeof config.architecture === 'string') platform.architecture = config.architecture;
  if (typeof config.variant === 'string') platform.variant = config.variant;
  return {
    path,
    format,
    digest,
    digestKind,
    mediaType,
    ...(ref !== undefined ? { ref } : {}),
    refs,
    configDigest,
    config,
    platform,
    layers,
    openLayer: (layer) => src.stream(layer.name),
    peekLayer: (layer, n) => src.peek(layer.name, n),
    close: () => src.close(),
  };
}

/**
 * A registry image as the scanner's `OpenedImage`: the reference is resolved to its platform
 * manifest (digest-checked), the config blob is fetched and verified, and each layer streams
 * straight from the registry through a sha256 check — no copy of the image on disk. With a
 * layer cache, a layer already cached is read from it (verified again), and one that is not
 * is teed into it while the scanner reads.
 */
import { PassThrough, type Readable } from 'node:stream';
import type { LayerRef, OpenedImage, Platform } from '../scanner/oci';
import type { LayerCache } from './cache';
import { asDescriptor, MEDIA_TYPES, OciRegistryClient } from './client';
import { RegistryError } from './errors';
import { toReference } from './reference';
import type { FetchedManifest, ImageReference, RegistryClient, ResolvedReference } from './types';

const CONFIG_TYPES = new Set<string>([MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig]);
const DEFAULT_MAX_CONFIG_BYTES = 16 << 20;

export interface OpenRegistryImageOptions {
  /** "os/arch[/variant]" for multi-platform indexes; default the worker's linux/<arch>. */
  platform?: string;
  cache?: LayerCache;
  maxConfigBytes?: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The error, its message prefixed with the image it happened in (a registry's messages name the repository and blob). */
function inImage(e: unknown, pinned: string): Error {
  if (e instanceof RegistryError && !e.message.includes(pinned)) {
    return new RegistryError(e.code, `image ${pinned}: ${e.message}`, e.details, { cause: e });
  }
  return e as Error;
}

/** A Readable handed out now and fed once `open` resolves (OpenedImage.openLayer is synchronous). */
function lazyStream(open: () => Promise<Readable>, pinned: string): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  open().then(
    (src) => {
      if (out.destroyed) {
        src.destroy();
        return;
      }
      src.on('error', (e) => out.destroy(inImage(e, pinned)));
      out.on('close', () => src.destroy());
      src.pipe(out);
    },
    (e: unknown) => out.destroy(inImage(e, pinned)),
  );
  return out;
}

async function readN(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of stream) {
      chunks.push(c as Buffer);
      total += (c as Buffer).length;
      if (total >= n) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

export async function openRegistryImage(client: RegistryClient, refIn: string | ImageReference, opts: OpenRegistryImageOptions = {}): Promise<OpenedImage> {
  const ref = toReference(refIn);
  const platformOpt = opts.platform ? { platform: opts.platform } : {};
  let resolved: ResolvedReference;
  let manifest: FetchedManifest;
  if (client instanceof OciRegistryClient) {
    ({ resolved, manifest } = await client.resolveManifest(ref, platformOpt));
  } else {
    resolved = await client.resolve(ref, platformOpt);
    manifest = await client.getManifest(resolved.pinned);
  }
  const pinned = resolved.pinned;
  const m = manifest.json;
  if (!isObject(m.config) || !Array.isArray(m.layers))
    throw new RegistryError('PROTOCOL', `manifest ${pinned} is not an image manifest (no config and layers)`);
  const configDesc = asDescriptor(m.config, `manifest ${pinned} config`);
  if (!CONFIG_TYPES.has(configDesc.mediaType)) {
    throw new RegistryError('PROTOCOL', `manifest ${pinned} is not a container image (config media type ${configDesc.mediaType})`, {
      mediaType: configDesc.mediaType,
    });
  }
  if (configDesc.size > (opts.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES)) {
    throw new RegistryError('TOO_LARGE', `config ${configDesc.digest} of ${pinned}: ${configDesc.size} bytes, more than the limit`);
  }
  const configBytes = await client.getBlob(ref, configDesc.digest, opts.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES);
  if (configBytes.length !== configDesc.size) {
    throw new RegistryError('DIGEST_MISMATCH', `config ${configDesc.digest} of ${pinned}: ${configBytes.length} bytes, the manifest states ${configDesc.size}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(configBytes.toString('utf8'));
  } catch (e) {
    throw new RegistryError('PROTOCOL', `config ${configDesc.digest} of ${pinned}: invalid JSON (${(e as Error).message})`);
  }
  if (!isObject(config)) throw new RegistryError('PROTOCOL', `config ${configDesc.digest} of ${pinned}: not a JSON object`);
  const rootfs = config.rootfs;
  const diffIds =
    isObject(rootfs) && Array.isArray(rootfs.diff_ids) && rootfs.diff_ids.every((x) => typeof x === 'string') ? (rootfs.diff_ids as string[]) : undefined;
  const descs = m.layers.map((l, i) => asDescriptor(l, `manifest ${pinned} layers[${i}]`));
  const layers: LayerRef[] = descs.map((d, i) => ({
    index: i,
    name: d.digest,
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    ...(diffIds && diffIds.length === descs.length ? { diffId: diffIds[i] } : {}),
  }));
  const platform: Platform = {};
  if (typeof config.os === 'string') platform.os = config.os;
  if (typeof config.architecture === 'string') platform.architecture = config.architecture;
  if (typeof config.variant === 'string') platform.variant = config.variant;
  const cache = opts.cache;
  const layerWhat = (l: LayerRef) => `layer ${l.digest} of ${pinned}`;

  const openLayer = (layer: LayerRef): Readable =>
    lazyStream(async () => {
      const digest = layer.digest;
      if (!digest) throw new RegistryError('PROTOCOL', `${pinned}: layer ${layer.index} has no digest`);
      const cached = cache ? await cache.open(digest, layer.size, layerWhat(layer)) : undefined;
      if (cached) return cached;
      const net = await client.openBlob(ref, digest, layer.size);
      if (!cache || (layer.size !== undefined && layer.size > cache.maxBytes)) return net;
      const w = cache.writer(digest, layer.size);
      net.on('error', (e) => w.destroy(e));
      w.on('close', () => net.destroy());
      return net.pipe(w);
    }, pinned);

  return {
    path: pinned,
    // The scanner's formats name where bytes sit; a registry serves the OCI layout's objects.
    format: 'oci-layout',
    digest: resolved.digest,
    digestKind: 'manifest',
    mediaType: resolved.mediaType,
    ref: ref.toString(),
    refs: [ref.toString()],
    configDigest: configDesc.digest,
    config,
    platform,
    layers,
    openLayer,
    peekLayer: async (layer, n) => {
      const cached = cache && layer.digest ? await cache.open(layer.digest, layer.size, layerWhat(layer)) : undefined;
      if (cached) return readN(cached, n);
      // Only the first bytes are needed (compression sniffing): read them and drop the connection.
      if (!layer.digest) throw new RegistryError('PROTOCOL', `${pinned}: layer ${layer.index} has no digest`);
      const digest = layer.digest;
      const head = client instanceof OciRegistryClient ? client.peekBlob(ref, digest, n) : client.openBlob(ref, digest, layer.size).then((s) => readN(s, n));
      return head.catch((e: unknown) => Promise.reject(inImage(e, pinned)));
    },
    close: async () => {},
  };
}

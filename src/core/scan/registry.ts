/**
 * The scan feature's access to OCI registries (src/registry): which `--image` values are
 * registry references, one client per process built from the registry settings
 * (STELLA_REGISTRY_AUTH_FILE, STELLA_INSECURE_REGISTRIES, STELLA_LAYER_CACHE_DIR,
 * STELLA_LAYER_CACHE_MAX_BYTES), resolving a reference to its digest, and opening the pinned
 * `host/repo@digest` for the one-pass inventory (layers streamed, digests checked).
 */
import { isAbsolute } from 'node:path';
import type { AppContext } from '../context';
import { LibraryError, badInput } from '../../lib/errors';
import { createLayerCache, createRegistryClient, openRegistryImage, parseReference, type LayerCache, type RegistryClient } from '../../registry/index';
import type { ImageSource } from '../../scanner/index';
import { toStellaError } from './engine';

const PINNED_RE = /@sha256:[0-9a-f]{64}$/;

/**
 * Whether `--image` names a registry image (checked after the catalogue, whose names win):
 * `host[:port]/repo[:tag|@digest]` where the first component is a host (has a '.' or a ':',
 * or is `localhost`), or anything ending in `@sha256:<hex>`. Absolute paths and bare digests
 * are never references.
 */
export function isRegistryReference(image: string): boolean {
  if (!image || isAbsolute(image) || image.startsWith('sha256:') || image.startsWith('.')) return false;
  if (PINNED_RE.test(image)) return true;
  const slash = image.indexOf('/');
  if (slash <= 0) return false;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/** `registry/repository@sha256:…`: what a run records as its image, so every later read opens exactly that digest. */
export function isPinnedReference(image: string): boolean {
  return isRegistryReference(image) && PINNED_RE.test(image);
}

/** Registry access for one scan: a host the caller allowed over plain HTTP for this request. */
export interface RegistryAccess {
  insecure?: boolean;
}

interface ProcessRegistry {
  clients: Map<string, RegistryClient>;
  cache: LayerCache | undefined;
}
const perContext = new WeakMap<AppContext, ProcessRegistry>();

function processRegistry(ctx: AppContext): ProcessRegistry {
  let r = perContext.get(ctx);
  if (!r) {
    const c = ctx.cfg.registry;
    r = { clients: new Map(), cache: c.layerCacheDir ? createLayerCache({ dir: c.layerCacheDir, maxBytes: c.layerCacheMaxBytes }) : undefined };
    perContext.set(ctx, r);
  }
  return r;
}

/**
 * The process's client (settings from the config), or one that may also speak plain HTTP to
 * `host` when the request asked for it (`--insecure-registry`: that host only).
 */
export function registryClient(ctx: AppContext, host?: string): RegistryClient {
  const reg = processRegistry(ctx);
  const cfg = ctx.cfg.registry;
  const insecure = host && !cfg.insecureRegistries.includes(host) ? [...cfg.insecureRegistries, host] : cfg.insecureRegistries;
  const key = insecure.join(',');
  let client = reg.clients.get(key);
  if (!client) {
    client = createRegistryClient({ ...(cfg.authFile ? { authFile: cfg.authFile } : {}), insecureRegistries: insecure });
    reg.clients.set(key, client);
  }
  return client;
}

function clientFor(ctx: AppContext, ref: string, access: RegistryAccess): RegistryClient {
  if (!access.insecure) return registryClient(ctx);
  let host: string;
  try {
    host = parseReference(ref).registry;
  } catch (e) {
    throw toStellaError(e, `image ${ref}`);
  }
  return registryClient(ctx, host);
}

export interface ResolvedRegistryImage {
  /** `registry/repository@digest` of the platform image manifest. */
  pinned: string;
  digest: string;
  mediaType: string;
  platform: { os?: string; architecture?: string; variant?: string } | null;
  indexDigest: string | null;
}

/**
 * Tag or digest → the platform manifest digest (manifest fetched and verified); errors name the
 * reference. `upfront` (the API, before anything starts): a host that does not exist in DNS is
 * the caller's mistake (BAD_INPUT); in the worker it stays UNAVAILABLE, retried.
 */
export async function resolveRegistryImage(
  ctx: AppContext,
  ref: string,
  opts: RegistryAccess & { platform?: string; upfront?: boolean } = {},
): Promise<ResolvedRegistryImage> {
  if (opts.platform !== undefined && !/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/.test(opts.platform))
    throw badInput(`--platform ${JSON.stringify(opts.platform)} is not os/arch[/variant] (e.g. linux/amd64, linux/arm64/v8)`);
  const client = clientFor(ctx, ref, opts);
  try {
    const r = await client.resolve(ref, opts.platform ? { platform: opts.platform } : {});
    return { pinned: r.pinned, digest: r.digest, mediaType: r.mediaType, platform: r.platform ?? null, indexDigest: r.indexDigest ?? null };
  } catch (e) {
    if (opts.upfront && e instanceof LibraryError && e.code === 'UNREACHABLE' && e.details?.reason === 'ENOTFOUND')
      throw badInput(`image ${ref}: ${e.message}`, { reason: 'UNKNOWN_HOST' }, { cause: e });
    throw toStellaError(e, `image ${ref}`);
  }
}

/** A loader for the pinned image: the scanner opens it when it starts reading (layers stream through the layer cache when one is set). */
export function registryImageSource(ctx: AppContext, pinned: string, access: RegistryAccess = {}): ImageSource {
  if (!isPinnedReference(pinned)) throw badInput(`registry image ${pinned} is not pinned to a digest (registry/repository@sha256:…)`);
  const client = clientFor(ctx, pinned, access);
  const cache = processRegistry(ctx).cache;
  return () => openRegistryImage(client, pinned, cache ? { cache } : {});
}

/** The image a run reads: a pinned registry reference, or a path on the worker's machine. */
export function scanImageSource(ctx: AppContext, c: { imagePath: string; insecureRegistry?: boolean }): ImageSource {
  return isPinnedReference(c.imagePath) ? registryImageSource(ctx, c.imagePath, { insecure: !!c.insecureRegistry }) : c.imagePath;
}

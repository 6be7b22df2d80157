import { isAbsolute, resolve } from 'node:path';
import type { AppContext } from '../context';
import { audit } from '../audit';
import { isDigest } from '../../lib/hash';
import { badInput, integrity, notFound } from '../../lib/errors';
import { identifyImage } from './engine';
import { isPinnedReference, isRegistryReference, resolveRegistryImage, type RegistryAccess } from './registry';
import { lastImagePath } from './runs';

/** The run's image format for an image read from a registry. */
export const REGISTRY_FORMAT = 'registry';

/**
 * Local image catalogue: names → image paths ON THE WORKER'S MACHINE (OCI layout dir, OCI
 * tar, docker-save tar). The API opens the image once at registration to record its
 * digest, so in a split deployment the path must be visible to API and worker alike.
 */

export type CatalogueImage = {
  name: string;
  path: string;
  digest: string;
  format: string | null;
  registeredAt: string;
  registeredBy: string | null;
};

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]{0,254}$/;

interface ImageRow {
  name: string;
  path: string;
  digest: string;
  format: string | null;
  registered_at: Date | string;
  registered_by: string | null;
}

function row(r: ImageRow): CatalogueImage {
  return {
    name: r.name,
    path: r.path,
    digest: r.digest,
    format: r.format,
    registeredAt: new Date(r.registered_at).toISOString(),
    registeredBy: r.registered_by,
  };
}

export async function registerImage(
  ctx: AppContext,
  tenant: string,
  name: string,
  path: string,
  actor: string,
): Promise<CatalogueImage & { replaced: CatalogueImage | null }> {
  if (!NAME_RE.test(name) || name.startsWith('sha256:'))
    throw badInput(`image name ${JSON.stringify(name)} is not valid (letters, digits, . _ - / : @; not a digest)`);
  if (!isAbsolute(path)) throw badInput(`image path must be absolute on the worker's machine, got ${JSON.stringify(path)}`);
  const abs = resolve(path);
  const id = await identifyImage(abs);
  const prev = await ctx.db.query<ImageRow>('SELECT * FROM scan_images WHERE tenant_id=$1 AND name=$2', [tenant, name]);
  const r = await ctx.db.query<ImageRow>(
    `INSERT INTO scan_images (tenant_id, name, path, digest, format, registered_by) VALUES ($1,$2,$3,$4,$5,$6)
     ON CONFLICT (tenant_id, name) DO UPDATE SET path=EXCLUDED.path, digest=EXCLUDED.digest, format=EXCLUDED.format, registered_by=EXCLUDED.registered_by, registered_at=now()
     RETURNING *`,
    [tenant, name, abs, id.digest, id.format, actor],
  );
  const replaced = prev.rows[0] ? row(prev.rows[0]) : null;
  if (replaced && (replaced.path !== abs || replaced.digest !== id.digest)) {
    await audit(ctx.db, { tenant, actor, action: 'scan.image.replace', target: name, details: { from: replaced, to: { path: abs, digest: id.digest } } });
  }
  return { ...row(r.rows[0]!), replaced };
}

export async function listImages(ctx: AppContext, tenant: string): Promise<CatalogueImage[]> {
  const r = await ctx.db.query<ImageRow>('SELECT * FROM scan_images WHERE tenant_id=$1 ORDER BY name', [tenant]);
  return r.rows.map(row);
}

export interface ResolvedImage {
  /** A path on the worker's machine, or for a registry image its pinned `registry/repository@digest`. */
  path: string;
  ref: string | null;
  digest: string;
  format: string;
  source: 'catalogue' | 'path' | 'previous-scan' | 'registry';
}

/** How a registry reference is resolved: `--platform` for a multi-platform index, `--insecure-registry` for its host. */
export interface ResolveOptions extends RegistryAccess {
  platform?: string;
  /** Resolving in the API before a workflow starts (an unknown registry host is then bad input). */
  upfront?: boolean;
}

/** A registry reference resolved to the platform manifest's digest; from here on only the pinned reference is used. */
async function fromRegistry(ctx: AppContext, image: string, opts: ResolveOptions): Promise<ResolvedImage> {
  const r = await resolveRegistryImage(ctx, image, opts);
  return { path: r.pinned, ref: r.pinned, digest: r.digest, format: REGISTRY_FORMAT, source: 'registry' };
}

/**
 * `--image` is a catalogue name, an absolute path on the worker's machine, a registry
 * reference (`host/repo:tag`, `host/repo@sha256:…`; a registered catalogue name wins), or an
 * artifact digest that the catalogue (or an earlier scan) knows a path or reference for. The
 * image is opened (or its manifest fetched) to learn its digest, so a workflow id can be
 * derived from it before anything starts.
 */
export async function resolveImage(ctx: AppContext, tenant: string, image: string, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  if (!image || image.length > 4096) throw badInput('--image is required');
  if (isDigest(image)) {
    const c = await ctx.db.query<{ name: string; path: string }>(
      'SELECT name, path FROM scan_images WHERE tenant_id=$1 AND digest=$2 ORDER BY registered_at DESC LIMIT 1',
      [tenant, image],
    );
    let path: string | undefined = c.rows[0]?.path;
    let ref: string | null = c.rows[0]?.name ?? null;
    let source: ResolvedImage['source'] = 'catalogue';
    if (!path) {
      const prev = await lastImagePath(ctx, tenant, image);
      path = prev?.path;
      ref = prev?.ref ?? null;
      source = 'previous-scan';
    }
    if (!path) throw notFound(`unknown image ${image}: no catalogue entry or earlier scan has a path for this digest (stella image register <name> <path>)`);
    if (isPinnedReference(path)) {
      const r = await fromRegistry(ctx, path, opts);
      if (r.digest !== image) throw integrity(`registry image ${path} resolves to ${r.digest}, not ${image}`);
      return { ...r, source: 'previous-scan' };
    }
    const id = await identifyImage(path);
    if (id.digest !== image) throw badInput(`image ${ref ?? path} now hashes to ${id.digest}, not ${image}; re-register it`);
    return { path, ref, digest: id.digest, format: id.format, source };
  }
  const c = await ctx.db.query<{ name: string; path: string }>('SELECT name, path FROM scan_images WHERE tenant_id=$1 AND name=$2', [tenant, image]);
  if (c.rows[0]) {
    const { name, path } = c.rows[0];
    const id = await identifyImage(path);
    return { path, ref: name, digest: id.digest, format: id.format, source: 'catalogue' };
  }
  if (isRegistryReference(image)) return fromRegistry(ctx, image, opts);
  if (!isAbsolute(image))
    throw notFound(
      `unknown image ${JSON.stringify(image)}: not a catalogue name (stella image list), an absolute path nor a registry reference (host/repo:tag, host/repo@sha256:…)`,
    );
  const id = await identifyImage(resolve(image));
  return { path: resolve(image), ref: id.ref, digest: id.digest, format: id.format, source: 'path' };
}

/** The catalogue name registered for an artifact digest (newest registration), if any. */
export async function imageRefFor(ctx: Pick<AppContext, 'db'>, tenant: string, digest: string): Promise<string | null> {
  const r = await ctx.db.query<{ name: string }>('SELECT name FROM scan_images WHERE tenant_id=$1 AND digest=$2 ORDER BY registered_at DESC LIMIT 1', [
    tenant,
    digest,
  ]);
  return r.rows[0]?.name ?? null;
}

import {
  inventoryImage,
  openImage,
  scanInventory,
  scanReport,
  SCANNER_NAME,
  SCANNER_VERSION,
  type CycloneDxBom,
  type Feed,
  type ImageSource,
  type Inventory,
  type OpenedImage,
  type ScanResult,
} from '../../scanner/index';
import { LibraryError, StellaError, badInput, conflict } from '../../lib/errors';
import { countBySeverity, matchPackages } from '../../scanner/osv';
import { externalBom, normaliseSbom, type ScanEngine } from './external';

/**
 * The one seam between stella's scan workflow and the pure scanner library (src/scanner).
 * Everything here composes the library's public pieces; no parsing of images happens in
 * this module. Scanner errors become StellaErrors with the same code vocabulary.
 */

export const SCANNER = { name: SCANNER_NAME, version: SCANNER_VERSION };

export interface ImageIdentity {
  digest: string;
  digestKind: 'manifest' | 'config';
  format: string;
  ref: string | null;
  refs: string[];
  layers: number;
}

/** Map a scanner (or fs) error to a StellaError; anything else is rethrown as is (transient). */
export function toStellaError(e: unknown, what: string): unknown {
  if (e instanceof StellaError) return e;
  // The scanner's and the registry client's errors (every LibraryError says which stella code it means).
  if (e instanceof LibraryError) {
    // Registry image errors already name the (pinned) image: "image <host/repo@digest>: …"; don't say it twice.
    const named = e.message.startsWith(`${what}:`) || (what.startsWith('image ') && e.message.startsWith('image '));
    const message = named ? e.message : `${what}: ${e.message}`;
    return new StellaError(e.category, message, { ...(e.details ?? {}), reason: e.code }, { cause: e });
  }
  const c = (e as NodeJS.ErrnoException).code;
  if (c === 'ENOENT' || c === 'EACCES' || c === 'ENOTDIR' || c === 'EISDIR') return new StellaError('BAD_INPUT', `${what}: ${(e as Error).message}`);
  return e;
}

async function withImage<T>(path: string, ref: string | undefined, fn: (img: OpenedImage) => Promise<T>): Promise<T> {
  let img: OpenedImage;
  try {
    img = await openImage(path, ref ? { ref } : {});
  } catch (e) {
    throw toStellaError(e, `image ${path}`);
  }
  try {
    return await fn(img);
  } catch (e) {
    throw toStellaError(e, `image ${path}`);
  } finally {
    await img.close().catch(() => undefined);
  }
}

/** Open an image just far enough to learn its digest (manifest and config verified). */
export async function identifyImage(path: string, ref?: string): Promise<ImageIdentity> {
  return withImage(path, ref, async (img) => ({
    digest: img.digest,
    digestKind: img.digestKind,
    format: img.format,
    ref: img.ref ?? null,
    refs: img.refs,
    layers: img.layers.length,
  }));
}

/** The built-in inventory, plus an external engine's own SBOM when one is configured. */
export interface ScanInventory extends Inventory {
  external?: { tool: string; bom: CycloneDxBom };
}

/**
 * Read the image once (layers in order, whiteouts, digests verified while streaming, every
 * detector) into an inventory; with an external engine its SBOM is kept alongside.
 */
export async function readInventory(
  source: ImageSource,
  opts: { expectedDigest?: string; engine?: ScanEngine; signal?: AbortSignal; label?: string },
): Promise<ScanInventory> {
  const label = opts.label ?? (typeof source === 'string' ? source : 'image');
  const path = typeof source === 'string' ? source : undefined;
  // External tools read a file or directory; a registry image streams into the built-in scanner only.
  if (opts.engine && opts.engine !== 'builtin' && path === undefined)
    throw badInput(
      `scanner engine ${opts.engine} reads images on the worker's disk only; scan ${label} with the builtin engine (stella scanner config set engine builtin)`,
    );
  let inv: Inventory;
  try {
    inv = await inventoryImage(source);
  } catch (e) {
    throw toStellaError(e, `image ${label}`);
  }
  if (opts.expectedDigest && inv.artifactDigest !== opts.expectedDigest) {
    throw conflict(`image at ${label} is ${inv.artifactDigest}, not the requested artifact ${opts.expectedDigest} (the image changed since it was resolved?)`);
  }
  if (!opts.engine || opts.engine === 'builtin' || path === undefined) return inv;
  // The image was opened and verified above; the configured tool lists the packages.
  const ext = await externalBom(opts.engine, path, inv.format, opts.signal ? { signal: opts.signal } : {});
  return { ...inv, external: ext };
}

/**
 * SBOM and findings from an inventory (no image access). `now` is the scan time: the same
 * inventory + time + feed give the same bytes, which is what makes storing the SBOM and
 * report idempotent across activity retries and replays.
 */
export function resultFromInventory(inv: ScanInventory, opts: { now: string; feed?: Feed }): ScanResult {
  const r = scanInventory(inv, { now: opts.now, ...(opts.feed ? { feed: opts.feed } : {}) });
  if (!inv.external) return r;
  const ext = normaliseSbom(inv.external.bom, opts.now, inv.artifactDigest, inv.external.tool);
  const findings = opts.feed ? matchPackages(ext.packages, opts.feed, r.distro ?? undefined) : [];
  return {
    ...r,
    sbom: ext.sbom,
    sbomBytes: ext.bytes,
    sbomDigest: ext.digest,
    packages: ext.packages,
    findings,
    counts: countBySeverity(findings),
    warnings: [...r.warnings, `SBOM generated by ${ext.tool}`],
  };
}

/** Read the image and build the result in one go (replay records a run this way). */
export async function runScan(
  source: ImageSource,
  opts: { expectedDigest?: string; now: string; feed?: Feed; engine?: ScanEngine; signal?: AbortSignal; label?: string },
): Promise<ScanResult> {
  const inv = await readInventory(source, opts);
  return resultFromInventory(inv, { now: opts.now, ...(opts.feed ? { feed: opts.feed } : {}) });
}

/** The scan-report document: the scanner's scanReport() plus what ties it to this run. */
export function buildReport(r: ScanResult, extra: { scanId: string; feed: { version: number; digest: string; records: number } | null; warnings: string[] }) {
  const base = scanReport(r);
  return {
    ...base,
    scanId: extra.scanId,
    // The brief's contract: feed "none" (and a warning) when no feed was imported.
    feed: extra.feed ? { digest: extra.feed.digest, count: extra.feed.records, version: extra.feed.version } : ('none' as const),
    feedDigest: extra.feed?.digest ?? null,
    feedVersion: extra.feed?.version ?? null,
    warnings: [...base.warnings, ...extra.warnings],
  };
}

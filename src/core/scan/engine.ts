import { openImage, scanImage, scanReport, ScannerError, SCANNER_NAME, SCANNER_VERSION, type Feed, type OpenedImage, type ScanResult } from '../../scanner/index';
import { StellaError, conflict } from '../errors';

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
  if (e instanceof ScannerError) {
    const code = e.code === 'TOO_LARGE' ? 'TOO_LARGE' : e.code;
    return new StellaError(code, `${what}: ${e.message}`, e.details);
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

/**
 * Run the scanner library's scanImage (layers in order, whiteouts, digests verified,
 * detectors, CycloneDX 1.6, OSV matching when a feed is given). `now` is the scan time:
 * the same image + time + feed give the same bytes, which is what makes storing the SBOM
 * and report idempotent across activity retries and replays.
 */
export async function runScan(path: string, opts: { expectedDigest?: string; now: string; feed?: Feed }): Promise<ScanResult> {
  let r: ScanResult;
  try {
    r = await scanImage(path, { now: opts.now, ...(opts.feed ? { feed: opts.feed } : {}) });
  } catch (e) {
    throw toStellaError(e, `image ${path}`);
  }
  if (opts.expectedDigest && r.artifactDigest !== opts.expectedDigest) {
    throw conflict(`image at ${path} is ${r.artifactDigest}, not the requested artifact ${opts.expectedDigest} (the image changed since it was resolved?)`);
  }
  return r;
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

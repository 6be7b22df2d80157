import { z } from 'zod';
import { sha256Digest } from '../lib/hash';
import { buildCycloneDx, sbomBytes as toBytes, validateCycloneDx, type CycloneDxBom } from './cyclonedx';
import { detectPackages, ECOSYSTEMS, fileExtractor, wantsFile, type Distro, type Ecosystem, type Package, type Unidentified } from './detectors/index';
import { readImageFilesystem, type LayerLimits, type LayerStat } from './layers';
import { openImage, type ImageFormat, type OpenedImage, type Platform } from './oci';
import { countBySeverity, loadFeed, matchPackages, type Feed, type Finding, type SeverityCounts } from './osv';
import { SCANNER_NAME, SCANNER_VERSION } from './version';

export { SCANNER_NAME, SCANNER_VERSION } from './version';

export interface InventoryOptions {
  /** Select an image in a multi-image layout/archive by ref name or tag. */
  ref?: string;
  /** For multi-platform indexes, "os/arch[/variant]" (default linux/amd64). */
  platform?: string;
  limits?: Partial<LayerLimits>;
}

export interface ScanOptions extends InventoryOptions {
  /** Advisory feed (loaded, or a path handed to loadFeed). Without it there are no findings. */
  feed?: Feed | string;
  /** Scan time recorded in the SBOM and report; passed in so replays are byte-identical. */
  now: Date | string;
}

/**
 * Everything one read of an image's layers yields: its identity, the OS, the packages (with
 * the layer each came from) and what could not be identified. Plain JSON: stored once per
 * image digest and scanner version, then SBOM, matching and attestation are built from it.
 */
export interface Inventory {
  schemaVersion: 1;
  scanner: { name: string; version: string };
  artifactDigest: string;
  digestKind: 'manifest' | 'config';
  imageRef: string | null;
  format: ImageFormat;
  mediaType: string;
  configDigest: string;
  platform: Platform;
  distro: Distro | null;
  packages: Package[];
  unidentified: Unidentified[];
  warnings: string[];
  layers: LayerStat[];
}

/** What a scan reports: the image's inventory (minus its own header) plus SBOM, findings and counts. */
export interface ScanResult
  extends Pick<
    Inventory,
    | 'artifactDigest'
    | 'digestKind'
    | 'imageRef'
    | 'format'
    | 'mediaType'
    | 'configDigest'
    | 'platform'
    | 'distro'
    | 'packages'
    | 'warnings'
    | 'layers'
    | 'unidentified'
  > {
  sbom: CycloneDxBom;
  /** Canonical JSON bytes of `sbom`. */
  sbomBytes: Buffer;
  sbomDigest: string;
  findings: Finding[];
  counts: SeverityCounts;
  feedDigest: string | null;
  feedCount: number | null;
  scannerName: string;
  scannerVersion: string;
  scannedAt: string;
}

/**
 * Where an image comes from: a path (OCI layout dir, OCI archive, docker-save tar), an image
 * already opened by another reader (a registry, src/registry), or a loader that opens one.
 * Every source goes through the same one-pass inventory.
 */
export type ImageSource = string | OpenedImage | (() => Promise<OpenedImage>);

async function openSource(source: ImageSource, opts: InventoryOptions): Promise<OpenedImage> {
  if (typeof source === 'function') return source();
  if (typeof source !== 'string') return source;
  return openImage(source, { ...(opts.ref !== undefined ? { ref: opts.ref } : {}), ...(opts.platform ? { platform: opts.platform } : {}) });
}

/**
 * Open the image once and read each layer once (stream → gunzip → tar, digests checked on the
 * way). An opened image handed in is closed here too, like one opened from a path.
 */
export async function inventoryImage(source: ImageSource, opts: InventoryOptions = {}): Promise<Inventory> {
  const image = await openSource(source, opts);
  try {
    const fs = await readImageFilesystem(image, { wants: wantsFile, extract: fileExtractor, ...(opts.limits ? { limits: opts.limits } : {}) });
    const { distro, packages, warnings, unidentified } = detectPackages(fs);
    return {
      schemaVersion: 1,
      scanner: { name: SCANNER_NAME, version: SCANNER_VERSION },
      artifactDigest: image.digest,
      digestKind: image.digestKind,
      imageRef: image.ref ?? null,
      format: image.format,
      mediaType: image.mediaType,
      configDigest: image.configDigest,
      platform: image.platform,
      distro: distro ?? null,
      packages,
      unidentified,
      warnings,
      layers: fs.layers,
    };
  } finally {
    await image.close();
  }
}

/** Scan an image (OCI layout dir, OCI archive or docker-save tar): SBOM, and findings when a feed is given. */
export async function scanImage(path: string, opts: ScanOptions): Promise<ScanResult> {
  const feed = typeof opts.feed === 'string' ? await loadFeed(opts.feed) : opts.feed;
  return scanInventory(await inventoryImage(path, opts), { now: opts.now, ...(feed ? { feed } : {}) });
}

/** SBOM and findings from a stored inventory: no image access. */
export function scanInventory(inv: Inventory, opts: { now: Date | string; feed?: Feed }): ScanResult {
  const now = new Date(opts.now);
  if (Number.isNaN(now.getTime())) throw new Error(`scanInventory: invalid now ${String(opts.now)}`);
  const { feed } = opts;
  const distro = inv.distro ?? undefined;
  const sbom = buildCycloneDx({
    artifactDigest: inv.artifactDigest,
    ...(inv.imageRef ? { imageRef: inv.imageRef } : {}),
    packages: inv.packages,
    ...(distro ? { distro } : {}),
    timestamp: now,
    image: { digestKind: inv.digestKind, configDigest: inv.configDigest, platform: inv.platform },
  });
  const check = validateCycloneDx(sbom);
  if (!check.valid) throw new Error(`internal error: generated SBOM is invalid: ${check.errors.join('; ')}`);
  const bytes = toBytes(sbom);
  const findings = feed ? matchPackages(inv.packages, feed, distro) : [];
  return {
    artifactDigest: inv.artifactDigest,
    digestKind: inv.digestKind,
    imageRef: inv.imageRef,
    format: inv.format,
    mediaType: inv.mediaType,
    configDigest: inv.configDigest,
    platform: inv.platform,
    distro: inv.distro,
    packages: inv.packages,
    sbom,
    sbomBytes: bytes,
    sbomDigest: sha256Digest(bytes),
    findings,
    counts: countBySeverity(findings),
    feedDigest: feed?.digest ?? null,
    feedCount: feed?.count ?? null,
    scannerName: inv.scanner.name,
    scannerVersion: inv.scanner.version,
    scannedAt: now.toISOString(),
    warnings: inv.warnings,
    layers: inv.layers,
    unidentified: inv.unidentified,
  };
}

// ---------------------------------------------------------------------------
// Scan report document

const SeverityEnum = z.enum(['critical', 'high', 'medium', 'low', 'none', 'unknown']);
const DigestString = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const CountsSchema = z.object({
  critical: z.number().int(),
  high: z.number().int(),
  medium: z.number().int(),
  low: z.number().int(),
  none: z.number().int(),
  unknown: z.number().int(),
});

export const ScanReportSchema = z.object({
  kind: z.literal('scan-report'),
  schemaVersion: z.literal(1),
  scanner: z.object({ name: z.string(), version: z.string() }),
  scannedAt: z.iso.datetime(),
  artifact: z.object({
    digest: DigestString,
    digestKind: z.enum(['manifest', 'config']),
    ref: z.string().nullable(),
    format: z.enum(['oci-layout', 'oci-archive', 'docker-archive']),
    mediaType: z.string(),
    configDigest: DigestString,
    platform: z.object({ os: z.string().optional(), architecture: z.string().optional(), variant: z.string().optional() }),
  }),
  distro: z.object({ id: z.string(), versionId: z.string().optional(), versionCodename: z.string().optional(), prettyName: z.string().optional() }).nullable(),
  sbom: z.object({
    digest: DigestString,
    format: z.literal('CycloneDX'),
    specVersion: z.literal('1.6'),
    serialNumber: z.string(),
    components: z.number().int(),
  }),
  packages: z.object({ total: z.number().int(), ...Object.fromEntries(ECOSYSTEMS.map((e) => [e, z.number().int()])) } as Record<
    'total' | Ecosystem,
    z.ZodNumber
  >),
  /** Executables and archives the scanner examined but could not tie to a package (paths capped). */
  unidentified: z.object({ count: z.number().int(), paths: z.array(z.string()) }).optional(),
  feed: z.object({ digest: DigestString, count: z.number().int() }).nullable(),
  counts: CountsSchema,
  findings: z.array(
    z.object({
      id: z.string(),
      aliases: z.array(z.string()),
      package: z.object({ ecosystem: z.enum(ECOSYSTEMS), name: z.string(), version: z.string(), purl: z.string() }),
      installedVersion: z.string(),
      fixedVersion: z.string().optional(),
      severity: SeverityEnum,
      score: z.number().optional(),
      cvssVector: z.string().optional(),
      summary: z.string(),
      advisory: z.object({ ecosystem: z.string(), name: z.string() }),
    }),
  ),
  warnings: z.array(z.string()),
});

export type ScanReport = z.infer<typeof ScanReportSchema>;

/** The report lists this many unidentified paths; the count is always exact. */
const MAX_UNIDENTIFIED_PATHS = 1000;

/** The `scan-report` evidence document for a scan (canonicalise it before hashing). */
export function scanReport(r: ScanResult): ScanReport {
  const eco = Object.fromEntries(ECOSYSTEMS.map((e) => [e, 0])) as Record<Ecosystem, number>;
  for (const p of r.packages) eco[p.ecosystem]++;
  return {
    kind: 'scan-report',
    schemaVersion: 1,
    scanner: { name: r.scannerName, version: r.scannerVersion },
    scannedAt: r.scannedAt,
    artifact: {
      digest: r.artifactDigest,
      digestKind: r.digestKind,
      ref: r.imageRef,
      format: r.format,
      mediaType: r.mediaType,
      configDigest: r.configDigest,
      platform: r.platform,
    },
    distro: r.distro
      ? {
          id: r.distro.id,
          ...(r.distro.versionId ? { versionId: r.distro.versionId } : {}),
          ...(r.distro.versionCodename ? { versionCodename: r.distro.versionCodename } : {}),
          ...(r.distro.prettyName ? { prettyName: r.distro.prettyName } : {}),
        }
      : null,
    sbom: { digest: r.sbomDigest, format: 'CycloneDX', specVersion: '1.6', serialNumber: r.sbom.serialNumber, components: r.sbom.components.length },
    packages: { total: r.packages.length, ...eco },
    feed: r.feedDigest ? { digest: r.feedDigest, count: r.feedCount ?? 0 } : null,
    counts: r.counts,
    unidentified: { count: r.unidentified.length, paths: r.unidentified.slice(0, MAX_UNIDENTIFIED_PATHS).map((u) => u.path) },
    findings: r.findings,
    warnings: r.warnings,
  };
}

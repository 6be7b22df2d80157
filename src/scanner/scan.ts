import { z } from 'zod';
import { sha256Digest } from '../lib/hash';
import { buildCycloneDx, sbomBytes as toBytes, validateCycloneDx, type CycloneDxBom } from './cyclonedx';
import { detectPackages, wantsFile, type Distro, type Ecosystem, type Package } from './detectors/index';
import { readImageFilesystem, type LayerLimits, type LayerStat } from './layers';
import { openImage, type ImageFormat, type Platform } from './oci';
import { countBySeverity, loadFeed, matchPackages, type Feed, type Finding, type SeverityCounts } from './osv';
import { SCANNER_NAME, SCANNER_VERSION } from './version';

export { SCANNER_NAME, SCANNER_VERSION } from './version';

export interface ScanOptions {
  /** Select an image in a multi-image layout/archive by ref name or tag. */
  ref?: string;
  /** For multi-platform indexes, "os/arch[/variant]" (default linux/amd64). */
  platform?: string;
  /** Advisory feed (loaded, or a path handed to loadFeed). Without it there are no findings. */
  feed?: Feed | string;
  /** Scan time recorded in the SBOM and report; passed in so replays are byte-identical. */
  now: Date | string;
  limits?: Partial<LayerLimits>;
}

export interface ScanResult {
  artifactDigest: string;
  digestKind: 'manifest' | 'config';
  imageRef: string | null;
  format: ImageFormat;
  mediaType: string;
  configDigest: string;
  platform: Platform;
  distro: Distro | null;
  packages: Package[];
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
  warnings: string[];
  layers: LayerStat[];
}

/** Scan an image (OCI layout dir, OCI archive or docker-save tar): SBOM, and findings when a feed is given. */
export async function scanImage(path: string, opts: ScanOptions): Promise<ScanResult> {
  const now = new Date(opts.now);
  if (Number.isNaN(now.getTime())) throw new Error(`scanImage: invalid now ${String(opts.now)}`);
  const scannedAt = now.toISOString();
  const feed = typeof opts.feed === 'string' ? await loadFeed(opts.feed) : opts.feed;

  const image = await openImage(path, { ...(opts.ref !== undefined ? { ref: opts.ref } : {}), ...(opts.platform ? { platform: opts.platform } : {}) });
  try {
    const fs = await readImageFilesystem(image, { wants: wantsFile, ...(opts.limits ? { limits: opts.limits } : {}) });
    const { distro, packages, warnings } = detectPackages(fs);
    const sbom = buildCycloneDx({
      artifactDigest: image.digest,
      ...(image.ref ? { imageRef: image.ref } : {}),
      packages,
      ...(distro ? { distro } : {}),
      timestamp: now,
      image: { digestKind: image.digestKind, configDigest: image.configDigest, platform: image.platform },
    });
    const check = validateCycloneDx(sbom);
    if (!check.valid) throw new Error(`internal error: generated SBOM is invalid: ${check.errors.join('; ')}`);
    const bytes = toBytes(sbom);
    const findings = feed ? matchPackages(packages, feed, distro) : [];
    return {
      artifactDigest: image.digest,
      digestKind: image.digestKind,
      imageRef: image.ref ?? null,
      format: image.format,
      mediaType: image.mediaType,
      configDigest: image.configDigest,
      platform: image.platform,
      distro: distro ?? null,
      packages,
      sbom,
      sbomBytes: bytes,
      sbomDigest: sha256Digest(bytes),
      findings,
      counts: countBySeverity(findings),
      feedDigest: feed?.digest ?? null,
      feedCount: feed?.count ?? null,
      scannerName: SCANNER_NAME,
      scannerVersion: SCANNER_VERSION,
      scannedAt,
      warnings,
      layers: fs.layers,
    };
  } finally {
    await image.close();
  }
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
  packages: z.object({ total: z.number().int(), deb: z.number().int(), apk: z.number().int(), npm: z.number().int(), pypi: z.number().int() }),
  feed: z.object({ digest: DigestString, count: z.number().int() }).nullable(),
  counts: CountsSchema,
  findings: z.array(
    z.object({
      id: z.string(),
      aliases: z.array(z.string()),
      package: z.object({ ecosystem: z.enum(['deb', 'apk', 'npm', 'pypi']), name: z.string(), version: z.string(), purl: z.string() }),
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

/** The `scan-report` evidence document for a scan (canonicalise it before hashing). */
export function scanReport(r: ScanResult): ScanReport {
  const eco: Record<Ecosystem, number> = { deb: 0, apk: 0, npm: 0, pypi: 0 };
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
    findings: r.findings,
    warnings: r.warnings,
  };
}

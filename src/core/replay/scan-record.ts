/** The replay record of a scan-then-attest run (called by the scanRecordReplay activity). */
import type { AppContext } from '../context';
import { runScan } from '../scan/engine';
import { scanImageSource } from '../scan/registry';
import type { ScanEngine } from '../scan/external';
import { loadFeedSnapshot } from '../scan/feeds';
import { recordReplay } from './record';

/** What a scan run pinned: the image, the scan time and the advisory feed snapshot. */
export interface ScanReplaySource {
  tenant: string;
  scanId: string;
  artifactDigest: string;
  imagePath: string;
  imageRef: string | null;
  scanTime: string;
  feedDigest: string | null;
  engine?: ScanEngine;
  insecureRegistry?: boolean;
}

/**
 * The image is read once more with the pinned feed (as the match step does) to capture the
 * inventory, findings and SBOM exactly as the verdict saw them; same scan time → same bundles
 * → idempotent.
 */
export async function recordScanReplay(ctx: AppContext, c: ScanReplaySource): Promise<{ manifestDigest: string; verdict: string }> {
  const feed = c.feedDigest ? await loadFeedSnapshot(ctx, c.feedDigest) : undefined;
  const r = await runScan(scanImageSource(ctx, c), {
    label: c.imageRef ?? c.imagePath,
    expectedDigest: c.artifactDigest,
    now: c.scanTime,
    engine: c.engine,
    ...(feed ? { feed } : {}),
  });
  const logs = `${[
    `scan ${c.scanId} of ${c.imageRef ?? c.imagePath} (${c.artifactDigest})`,
    `scanner ${r.scannerName} ${r.scannerVersion}`,
    `feed ${feed ? feed.digest : 'none'}`,
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join('\n')}\n`;
  const rec = await recordReplay(ctx, {
    tenant: c.tenant,
    scanId: c.scanId,
    artifactDigest: c.artifactDigest,
    imageRef: c.imageRef,
    packages: r.packages,
    ...(r.distro ? { distro: r.distro } : {}),
    feed: feed ?? null,
    sbom: r.sbom,
    findings: r.findings,
    logs,
    createdAt: c.scanTime,
  });
  return { manifestDigest: rec.manifestDigest, verdict: rec.manifest.verdict };
}

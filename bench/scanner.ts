import { pathToFileURL } from 'node:url';
import { detectPackages, wantsFile } from '../src/scanner/detectors/index';
import { buildCycloneDx, sbomBytes } from '../src/scanner/cyclonedx';
import { readImageFilesystem } from '../src/scanner/layers';
import { openImage } from '../src/scanner/oci';
import { feedFromRecords, matchPackages } from '../src/scanner/osv';
import { scanImage } from '../src/scanner/scan';
import { buildOciFixture, synthDpkgStatus, synthPackageLock } from '../test/support/oci-fixture';

/**
 * Scanner benchmark: a synthetic image with a 1,000-entry dpkg status database and an
 * npm lockfile, scanned end to end (open + verify + read layers + detect + SBOM), plus
 * the SBOM step alone and OSV matching against a synthetic feed. Medians over several
 * runs because the machine is shared.
 */

export interface ScannerBenchOptions {
  debPackages?: number;
  npmPackages?: number;
  feedRecords?: number;
  runs?: number;
}

async function median(runs: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export async function benchScanner(opts: ScannerBenchOptions = {}): Promise<Record<string, number | string>> {
  const debN = opts.debPackages ?? 1000;
  const npmN = opts.npmPackages ?? 250;
  const feedN = opts.feedRecords ?? 5000;
  const runs = opts.runs ?? 5;
  const fx = await buildOciFixture({
    ref: 'bench',
    layers: [
      [
        { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' },
        { path: 'var/lib/dpkg/status', content: synthDpkgStatus(debN) },
      ],
      [{ path: 'app/package-lock.json', content: synthPackageLock(npmN) }],
    ],
  });
  try {
    const now = '2024-06-01T00:00:00Z';
    // Warm-up (module init, JIT).
    const first = await scanImage(fx.dir, { now });
    const packages = first.packages;

    const scanDirMs = await median(runs, () => scanImage(fx.dir, { now }));
    const scanTarMs = await median(runs, () => scanImage(fx.tarPath, { now }));
    const image = await openImage(fx.dir);
    const fs = await readImageFilesystem(image, { wants: wantsFile });
    const detectMs = await median(runs, () => detectPackages(fs));
    const sbomMs = await median(runs, () => sbomBytes(buildCycloneDx({ artifactDigest: first.artifactDigest, packages, timestamp: now })));

    // Feed: half the records hit synthetic packages, half are noise for other names.
    const records = Array.from({ length: feedN }, (_, i) => ({
      id: `BENCH-${i}`,
      modified: '2024-01-01T00:00:00Z',
      affected: [
        i % 2 === 0
          ? {
              package: { ecosystem: 'Debian:12', name: `synth-pkg-${i % debN}` },
              ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: `${(i % 9) + 1}.0-1` }] }],
            }
          : { package: { ecosystem: 'npm', name: `other-${i}` }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '1.0.0' }] }] },
      ],
    }));
    let feed = feedFromRecords(records);
    const feedLoadMs = await median(runs, () => (feed = feedFromRecords(records)));
    let findings = 0;
    const matchMs = await median(runs, () => (findings = matchPackages(packages, feedFromRecords(records), first.distro ?? undefined).length));
    const matchWarmMs = await median(runs, () => matchPackages(packages, feed, first.distro ?? undefined));

    return {
      packages: packages.length,
      'packages.deb': packages.filter((p) => p.ecosystem === 'deb').length,
      'packages.npm': packages.filter((p) => p.ecosystem === 'npm').length,
      'sbom.bytes': first.sbomBytes.length,
      'scan.dir.ms (open+verify+layers+detect+sbom)': +scanDirMs.toFixed(1),
      'scan.ociTar.ms': +scanTarMs.toFixed(1),
      'detect.ms': +detectMs.toFixed(2),
      'sbom.build+serialise.ms': +sbomMs.toFixed(2),
      'feed.records': feedN,
      'feed.build.ms (validate+dedupe+digest)': +feedLoadMs.toFixed(1),
      'match.coldIndex.ms (incl. feed build)': +matchMs.toFixed(1),
      'match.warm.ms': +matchWarmMs.toFixed(2),
      findings,
      runs,
      node: process.version,
    };
  } finally {
    await fx.cleanup();
  }
}

function print(r: Record<string, number | string>): void {
  const w = Math.max(...Object.keys(r).map((k) => k.length));
  for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(w)}  ${v}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  benchScanner().then(print, (e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}

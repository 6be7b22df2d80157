import type { ImageFilesystem } from '../layers';
import { apkDetector } from './apk';
import { dpkgDetector } from './dpkg';
import { npmDetector } from './npm';
import { detectDistro, wantsOsRelease } from './os-release';
import { pythonDetector } from './python';
import type { Detector, Distro, Package } from './types';

export type { DetectContext, Detector, Distro, Ecosystem, Package } from './types';
export { parseApkInstalled } from './apk';
export { parseDpkgStatus } from './dpkg';
export { parsePackageLock } from './npm';
export { parseOsRelease } from './os-release';
export { parsePythonMetadata } from './python';

export const DETECTORS: readonly Detector[] = [dpkgDetector, apkDetector, npmDetector, pythonDetector];

/** Union of what every detector (and distro detection) needs to read. */
export function wantsFile(path: string): boolean {
  return wantsOsRelease(path) || DETECTORS.some((d) => d.wants(path));
}

export interface Detection {
  distro?: Distro;
  packages: Package[];
  warnings: string[];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Run all detectors; packages with the same purl are merged (locations unioned), output sorted by purl. */
export function detectPackages(fs: ImageFilesystem): Detection {
  const distro = detectDistro(fs);
  const warnings: string[] = [];
  const ctx = { ...(distro ? { distro } : {}), warnings };
  const byPurl = new Map<string, Package>();
  for (const d of DETECTORS) {
    for (const p of d.detect(fs, ctx)) {
      const prev = byPurl.get(p.purl);
      if (!prev) {
        byPurl.set(p.purl, { ...p, locations: [...p.locations] });
        continue;
      }
      prev.locations = [...new Set([...prev.locations, ...p.locations])];
      if (p.licenses?.length) prev.licenses = [...new Set([...(prev.licenses ?? []), ...p.licenses])];
      // A package seen anywhere as a non-dev dependency is not dev-only.
      if (prev.dev && !p.dev) delete prev.dev;
    }
  }
  const packages = [...byPurl.values()]
    .map((p) => ({ ...p, locations: [...p.locations].sort(cmp), ...(p.licenses ? { licenses: [...p.licenses].sort(cmp) } : {}) }))
    .sort((a, b) => cmp(a.purl, b.purl));
  return { ...(distro ? { distro } : {}), packages, warnings: [...fs.warnings, ...warnings] };
}

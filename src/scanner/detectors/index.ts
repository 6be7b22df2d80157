import type { ImageFilesystem } from '../layers';
import { apkDetector } from './apk';
import { binaryDetector, rpmDetector, unidentifiedDetector } from './binaries';
import { composerDetector, dotnetDetector, gemDetector } from './langs';
import { dpkgDetector } from './dpkg';
import { npmDetector } from './npm';
import { detectDistro, wantsOsRelease } from './os-release';
import { pythonDetector } from './python';
import type { Detector, Distro, Package, Unidentified } from './types';

export { ECOSYSTEMS, type DetectContext, type Detector, type Distro, type Ecosystem, type Package, type Unidentified } from './types';
export { fileExtractor, type FileFacts } from './binaries';
export { parseApkInstalled } from './apk';
export { parseDpkgStatus } from './dpkg';
export { parsePackageLock } from './npm';
export { parseOsRelease } from './os-release';
export { parsePythonMetadata } from './python';

export const DETECTORS: readonly Detector[] = [
  dpkgDetector,
  apkDetector,
  rpmDetector,
  npmDetector,
  pythonDetector,
  gemDetector,
  dotnetDetector,
  composerDetector,
  binaryDetector,
  unidentifiedDetector,
];

/** Digest of the layer that last wrote `path` (the blob digest, or the diff_id of legacy archives). */
function layerOf(fs: ImageFilesystem, p: Package): string | undefined {
  // dpkg rewrites its status file in every layer that installs anything; the package's own
  // file list was written by the layer that installed (or last upgraded) it.
  const lists = p.ecosystem === 'deb' ? [`/var/lib/dpkg/info/${p.name}.list`, `/var/lib/dpkg/info/${p.name}:${p.arch}.list`] : [];
  const path = [...lists, ...p.locations].find((l) => fs.lstat(l) ?? fs.stat(l));
  const node = path ? (fs.lstat(path) ?? fs.stat(path)) : undefined;
  const stat = node ? fs.layers.find((l) => l.index === node.layer) : undefined;
  return stat?.digest ?? stat?.diffId;
}

/** Union of what every detector (and distro detection) needs to read. */
export function wantsFile(path: string): boolean {
  return wantsOsRelease(path) || DETECTORS.some((d) => d.wants(path));
}

export interface Detection {
  distro?: Distro;
  packages: Package[];
  warnings: string[];
  /** Executables and archives no package could be drawn from, sorted by path. */
  unidentified: Unidentified[];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Run all detectors; packages with the same purl are merged (locations unioned), output sorted by purl. */
export function detectPackages(fs: ImageFilesystem): Detection {
  const distro = detectDistro(fs);
  const warnings: string[] = [];
  const unidentified: Unidentified[] = [];
  const ctx = { ...(distro ? { distro } : {}), warnings, unidentified };
  const byPurl = new Map<string, Package>();
  for (const d of DETECTORS) {
    for (const p of d.detect(fs, ctx)) {
      const prev = byPurl.get(p.purl);
      if (!prev) {
        byPurl.set(p.purl, { ...p, locations: [...p.locations] });
        continue;
      }
      prev.locations = [...new Set([...prev.locations, ...p.locations])];
      if (p.cpes?.length) prev.cpes = [...new Set([...(prev.cpes ?? []), ...p.cpes])];
      if (p.licenses?.length) prev.licenses = [...new Set([...(prev.licenses ?? []), ...p.licenses])];
      if (p.dependsOn?.length) prev.dependsOn = [...new Set([...(prev.dependsOn ?? []), ...p.dependsOn])].sort(cmp);
      // A package seen anywhere as a non-dev dependency is not dev-only.
      if (prev.dev && !p.dev) delete prev.dev;
    }
  }
  const packages = [...byPurl.values()]
    .map((p) => {
      const locations = [...p.locations].sort(cmp);
      const layer = layerOf(fs, { ...p, locations });
      return { ...p, locations, ...(p.licenses ? { licenses: [...p.licenses].sort(cmp) } : {}), ...(layer ? { layer } : {}) };
    })
    .sort((a, b) => cmp(a.purl, b.purl));
  unidentified.sort((a, b) => cmp(a.path, b.path));
  return { ...(distro ? { distro } : {}), packages, warnings: [...fs.warnings, ...warnings], unidentified };
}

import type { ImageFilesystem } from '../layers';
import { npmPurl } from '../purl';
import type { DetectContext, Detector, Package } from './types';

const LOCK_RE = /\/(?:package-lock|npm-shrinkwrap)\.json$/;
// The package.json at the root of an installed package, scoped or not; Debian installs
// packaged JavaScript modules (node-*) under /usr/share/nodejs (and /usr/lib/nodejs).
const INSTALLED_RE = /(?:\/node_modules|^\/usr\/share\/nodejs|^\/usr\/lib\/nodejs|^\/usr\/lib\/[^/]+\/nodejs)\/(?:@[^/]+\/)?[^/@][^/]*\/package\.json$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function licenseOf(v: unknown): string[] | undefined {
  if (typeof v === 'string' && v.trim()) return [v.trim()];
  if (isRecord(v) && typeof v.type === 'string') return [v.type];
  if (Array.isArray(v)) {
    const l = v.flatMap((x) => licenseOf(x) ?? []);
    return l.length ? l : undefined;
  }
  return undefined;
}

function pkg(name: string, version: string, location: string, license: unknown, dev: boolean): Package {
  const licenses = licenseOf(license);
  return {
    ecosystem: 'npm',
    name,
    version,
    purl: npmPurl(name, version),
    locations: [location],
    ...(licenses ? { licenses } : {}),
    ...(dev ? { dev: true } : {}),
  };
}

export function parsePackageLock(text: string, location: string): Package[] {
  const lock = JSON.parse(text) as unknown;
  if (!isRecord(lock)) throw new Error('not a JSON object');
  const out: Package[] = [];
  if (isRecord(lock.packages)) {
    // lockfile v2/v3: flat map keyed by install path.
    for (const [key, entry] of Object.entries(lock.packages)) {
      if (key === '' || !isRecord(entry) || entry.link === true) continue;
      const at = key.lastIndexOf('node_modules/');
      if (at === -1) continue; // workspace source folder; its node_modules link is listed separately
      const name = typeof entry.name === 'string' ? entry.name : key.slice(at + 'node_modules/'.length);
      if (typeof entry.version !== 'string' || !entry.version || !name) continue;
      out.push(pkg(name, entry.version, location, entry.license, entry.dev === true));
    }
    return out;
  }
  // lockfile v1: nested "dependencies" tree; non-registry deps carry URLs as versions.
  const walk = (deps: unknown) => {
    if (!isRecord(deps)) return;
    for (const [name, d] of Object.entries(deps)) {
      if (!isRecord(d)) continue;
      if (typeof d.version === 'string' && /^\d+\.\d+\.\d+/.test(d.version)) out.push(pkg(name, d.version, location, undefined, d.dev === true));
      walk(d.dependencies);
    }
  };
  walk(lock.dependencies);
  return out;
}

export const npmDetector: Detector = {
  name: 'npm',
  wants: (p) => (LOCK_RE.test(p) && !p.includes('/node_modules/')) || INSTALLED_RE.test(p),
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    const out: Package[] = [];
    for (const p of fs.capturedFiles()) {
      if (!this.wants(p)) continue;
      const text = fs.readFile(p)!.toString('utf8');
      try {
        if (LOCK_RE.test(p)) {
          out.push(...parsePackageLock(text, p));
        } else {
          const j = JSON.parse(text) as unknown;
          if (isRecord(j) && typeof j.name === 'string' && typeof j.version === 'string' && j.name && j.version) {
            out.push(pkg(j.name, j.version, p, j.license ?? j.licenses, false));
          }
        }
      } catch (e) {
        ctx.warnings.push(`${p}: unreadable npm metadata (${(e as Error).message})`);
      }
    }
    return out;
  },
};

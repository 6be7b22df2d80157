import type { ImageFilesystem } from '../layers';

/** "other": a purl type an external engine reported that stella has no detector for (kept, not matched). */
export const ECOSYSTEMS = ['deb', 'apk', 'rpm', 'npm', 'pypi', 'golang', 'maven', 'cargo', 'gem', 'nuget', 'composer', 'other'] as const;
export type Ecosystem = (typeof ECOSYSTEMS)[number];

/** Operating system identified from /etc/os-release (or fallbacks). */
export interface Distro {
  /** os-release ID, lowercase: "debian", "ubuntu", "alpine", ... */
  id: string;
  versionId?: string;
  versionCodename?: string;
  prettyName?: string;
  idLike: string[];
  /** File it was read from. */
  location: string;
}

export interface Package {
  ecosystem: Ecosystem;
  name: string;
  version: string;
  purl: string;
  /** Image paths of the metadata files the package was found in, sorted. */
  locations: string[];
  licenses?: string[];
  arch?: string;
  /** Source package (deb "Source", apk origin); advisories for distro packages are keyed by it. */
  source?: { name: string; version: string };
  /** npm: only ever seen as a dev dependency in lockfiles. */
  dev?: boolean;
  /** CPE 2.3 names derived from the package's identity (for NVD-keyed advisories). */
  cpes?: string[];
  /** Purls of the packages in this image it declares it depends on (SBOM dependency graph), sorted. */
  dependsOn?: string[];
  /** Digest of the layer that last wrote the package's first location (filled by detectPackages). */
  layer?: string;
}

/** A file the scanner looked at (an executable or an archive) but could not tie to any package. */
export interface Unidentified {
  path: string;
  kind: 'elf' | 'java-archive' | 'go-binary';
  reason: string;
}

export interface DetectContext {
  distro?: Distro;
  warnings: string[];
  unidentified: Unidentified[];
}

export interface Detector {
  name: string;
  /** Does this detector need the content of the file at `path`? */
  wants(path: string): boolean;
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[];
}

/** Parse RFC 822-style stanzas (dpkg status, apk uses its own). Keys lowercased; continuation lines joined with "\n". */
export function parseStanzas(text: string): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    if (raw.trim() === '') {
      if (cur.size) out.push(cur);
      cur = new Map();
      last = undefined;
      continue;
    }
    if ((raw[0] === ' ' || raw[0] === '\t') && last !== undefined) {
      cur.set(last, `${cur.get(last)}\n${raw.trim()}`);
      continue;
    }
    const colon = raw.indexOf(':');
    if (colon <= 0) continue; // malformed line: ignore rather than fail the whole database
    last = raw.slice(0, colon).trim().toLowerCase();
    cur.set(last, raw.slice(colon + 1).trim());
  }
  if (cur.size) out.push(cur);
  return out;
}

export function distroQualifier(d: Distro | undefined): string | undefined {
  if (!d) return undefined;
  const v = d.versionId ?? d.versionCodename;
  return v ? `${d.id}-${v}` : d.id;
}

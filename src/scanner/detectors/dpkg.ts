import type { ImageFilesystem } from '../layers';
import { buildPurl } from '../purl';
import { debCopyrightLicenses } from './licenses';
import { distroQualifier, parseStanzas, type DetectContext, type Detector, type Package } from './types';

const STATUS = '/var/lib/dpkg/status';
const STATUS_D = '/var/lib/dpkg/status.d/';
// States in which the package's files are (at least partly) on disk.
const PRESENT = new Set(['installed', 'half-installed', 'unpacked', 'half-configured', 'triggers-awaited', 'triggers-pending']);

/** "1:2.38.1-5+b1" → "2.38.1": what upstream (and NVD) calls the version. */
function upstreamVersion(v: string): string {
  const noEpoch = v.slice(v.indexOf(':') + 1);
  const dash = noEpoch.lastIndexOf('-');
  return dash > 0 ? noEpoch.slice(0, dash) : noEpoch;
}

/** Package names in a Depends/Pre-Depends/Provides field: one array of alternatives per comma group. */
function relationNames(field: string | undefined): string[][] {
  if (!field) return [];
  return field
    .split(',')
    .map((group) =>
      group
        .split('|')
        .map((alt) => alt.trim().split(/[\s(:[]/)[0]!)
        .filter(Boolean),
    )
    .filter((g) => g.length > 0);
}

/**
 * The dependency graph among the packages of one status file: each package's Depends and
 * Pre-Depends resolved to installed packages (by name, or through a package that Provides the
 * name); for alternatives (`a | b`) the first one installed. Unresolvable names are left out.
 */
function withDependencies(pkgs: Array<{ p: Package; depends: string[][]; provides: string[] }>): Package[] {
  const byName = new Map<string, string>();
  for (const { p, provides } of pkgs) {
    byName.set(p.name, p.purl);
    for (const v of provides) if (!byName.has(v)) byName.set(v, p.purl);
  }
  for (const { p } of pkgs) byName.set(p.name, p.purl); // a real package wins over a virtual one of the same name
  return pkgs.map(({ p, depends }) => {
    const deps = new Set<string>();
    for (const group of depends) {
      const hit = group.map((n) => byName.get(n)).find((x) => x !== undefined);
      if (hit && hit !== p.purl) deps.add(hit);
    }
    return deps.size ? { ...p, dependsOn: [...deps].sort() } : p;
  });
}

export function parseDpkgStatus(text: string, location: string, ctx: Pick<DetectContext, 'distro'>): Package[] {
  const out: Array<{ p: Package; depends: string[][]; provides: string[] }> = [];
  const namespace = ctx.distro && ['debian', 'ubuntu'].includes(ctx.distro.id) ? ctx.distro.id : ctx.distro?.idLike.includes('ubuntu') ? 'ubuntu' : 'debian';
  for (const st of parseStanzas(text)) {
    const name = st.get('package');
    const version = st.get('version');
    if (!name || !version) continue;
    const status = st.get('status');
    // distroless status.d files may omit Status: they only list installed packages.
    if (status !== undefined && !PRESENT.has(status.split(/\s+/)[2] ?? '')) continue;
    const arch = st.get('architecture');
    const src = /^(\S+)(?:\s+\((\S+)\))?/.exec(st.get('source') ?? '');
    const depends = [...relationNames(st.get('pre-depends')), ...relationNames(st.get('depends'))];
    const provides = relationNames(st.get('provides')).flat();
    const p: Package = {
      ecosystem: 'deb',
      name,
      version,
      purl: buildPurl({ type: 'deb', namespace, name, version, qualifiers: { arch, distro: distroQualifier(ctx.distro) } }),
      locations: [location],
      ...(arch ? { arch } : {}),
      source: { name: src?.[1] ?? name, version: src?.[2] ?? version },
      cpes: [`cpe:2.3:a:${name}:${name}:${upstreamVersion(version)}:*:*:*:*:*:*:*`],
    };
    out.push({ p, depends, provides });
  }
  return withDependencies(out);
}

const COPYRIGHT_RE = /^\/usr\/share\/doc\/[^/]+\/copyright$/;

/** Licences from /usr/share/doc/<package>/copyright (machine-readable format only). */
function withLicenses(fs: ImageFilesystem, pkgs: Package[]): Package[] {
  return pkgs.map((p) => {
    const text = fs.readFile(`/usr/share/doc/${p.name}/copyright`);
    const licenses = text ? debCopyrightLicenses(text.toString('utf8')) : [];
    return licenses.length ? { ...p, licenses } : p;
  });
}

export const dpkgDetector: Detector & { statusPackages(fs: ImageFilesystem, ctx: DetectContext): Package[] } = {
  name: 'dpkg',
  wants: (p) => p === STATUS || (p.startsWith(STATUS_D) && !p.endsWith('.md5sums') && p.indexOf('/', STATUS_D.length) === -1) || COPYRIGHT_RE.test(p),
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    return withLicenses(fs, this.statusPackages(fs, ctx));
  },
  statusPackages(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    const out: Package[] = [];
    const status = fs.readFile(STATUS);
    if (status) out.push(...parseDpkgStatus(status.toString('utf8'), STATUS, ctx));
    for (const p of fs.capturedFiles()) {
      if (p.startsWith(STATUS_D) && !p.endsWith('.md5sums') && p.indexOf('/', STATUS_D.length) === -1)
        out.push(...parseDpkgStatus(fs.readFile(p)!.toString('utf8'), p, ctx));
    }
    return out;
  },
};

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

export function parseDpkgStatus(text: string, location: string, ctx: Pick<DetectContext, 'distro'>): Package[] {
  const out: Package[] = [];
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
    out.push({
      ecosystem: 'deb',
      name,
      version,
      purl: buildPurl({ type: 'deb', namespace, name, version, qualifiers: { arch, distro: distroQualifier(ctx.distro) } }),
      locations: [location],
      ...(arch ? { arch } : {}),
      source: { name: src?.[1] ?? name, version: src?.[2] ?? version },
      cpes: [`cpe:2.3:a:${name}:${name}:${upstreamVersion(version)}:*:*:*:*:*:*:*`],
    });
  }
  return out;
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

import type { ImageFilesystem } from '../layers';
import { buildPurl } from '../purl';
import { spdxLicenses } from './licenses';
import { distroQualifier, type DetectContext, type Detector, type Package } from './types';

const DBS = ['/lib/apk/db/installed', '/usr/lib/apk/db/installed'];

/** apk's installed database: blank-line separated records of "X:value" lines. */
export function parseApkInstalled(text: string, location: string, ctx: Pick<DetectContext, 'distro'>): Package[] {
  const out: Package[] = [];
  const namespace = ctx.distro?.id ?? 'alpine';
  for (const block of text.split(/\r?\n\s*\r?\n/)) {
    const f: Record<string, string> = {};
    for (const line of block.split(/\r?\n/)) {
      if (line.length >= 2 && line[1] === ':' && !(line[0]! in f)) f[line[0]!] = line.slice(2);
    }
    const name = f.P;
    const version = f.V;
    if (!name || !version) continue;
    out.push({
      ecosystem: 'apk',
      name,
      version,
      purl: buildPurl({ type: 'apk', namespace, name: name.toLowerCase(), version, qualifiers: { arch: f.A, distro: distroQualifier(ctx.distro) } }),
      locations: [location],
      ...(f.L ? { licenses: spdxLicenses(f.L) } : {}),
      ...(f.A ? { arch: f.A } : {}),
      source: { name: f.o || name, version },
      cpes: [`cpe:2.3:a:${name}:${name}:${version.replace(/-r\d+$/, '')}:*:*:*:*:*:*:*`],
    });
  }
  return out;
}

export const apkDetector: Detector = {
  name: 'apk',
  wants: (p) => DBS.includes(p),
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    for (const p of DBS) {
      const buf = fs.readFile(p);
      // /lib/apk/db is normally the real one and /usr/lib/apk/db a symlink (or vice versa): read one.
      if (buf) return parseApkInstalled(buf.toString('utf8'), p, ctx);
    }
    return [];
  },
};

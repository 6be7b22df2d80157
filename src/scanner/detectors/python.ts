import type { ImageFilesystem } from '../layers';
import { pypiPurl } from '../purl';
import type { DetectContext, Detector, Package } from './types';

const WANT_RE = /(?:\.dist-info\/METADATA|\.egg-info\/PKG-INFO|\.egg-info)$/;

/** Core metadata headers (RFC 822 style) up to the first blank line; repeated keys collected. */
export function parseCoreMetadata(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line === '') break; // body (long description) follows
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      const vals = out.get(last)!;
      vals[vals.length - 1] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    const vals = out.get(last) ?? [];
    vals.push(line.slice(colon + 1).trim());
    out.set(last, vals);
  }
  return out;
}

function licenses(h: Map<string, string[]>): string[] | undefined {
  const expr = h.get('license-expression')?.[0];
  if (expr) return [expr];
  const lic = h.get('license')?.[0];
  // "License:" often holds the whole license text; only a short single line is a name.
  if (lic && !lic.includes('\n') && lic.length <= 100 && lic.toUpperCase() !== 'UNKNOWN') return [lic];
  const fromClassifiers = (h.get('classifier') ?? [])
    .filter((c) => c.startsWith('License ::'))
    .map((c) => c.split('::').pop()!.trim())
    .filter((c) => c && c !== 'OSI Approved');
  return fromClassifiers.length ? [...new Set(fromClassifiers)] : undefined;
}

export function parsePythonMetadata(text: string, location: string): Package | undefined {
  const h = parseCoreMetadata(text);
  const name = h.get('name')?.[0];
  const version = h.get('version')?.[0];
  if (!name || !version) return undefined;
  const lic = licenses(h);
  return { ecosystem: 'pypi', name, version, purl: pypiPurl(name, version), locations: [location], ...(lic ? { licenses: lic } : {}) };
}

export const pythonDetector: Detector = {
  name: 'python',
  wants: (p) => WANT_RE.test(p),
  detect(fs: ImageFilesystem, ctx: DetectContext): Package[] {
    const out: Package[] = [];
    for (const p of fs.capturedFiles()) {
      if (!WANT_RE.test(p)) continue;
      const pkg = parsePythonMetadata(fs.readFile(p)!.toString('utf8'), p);
      if (pkg) out.push(pkg);
      else ctx.warnings.push(`${p}: Python metadata without Name/Version`);
    }
    return out;
  },
};

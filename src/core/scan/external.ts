import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { StellaError } from '../../lib/errors';
import { which } from '../../dev/proc';
import type { Package } from '../../scanner/detectors/types';
import type { CycloneDxBom } from '../../scanner/index';

/**
 * Optional external SBOM generators (`stella scanner config set engine syft|trivy`). The
 * built-in scanner still opens the image first (digests, path safety, distro); the tool then
 * produces the CycloneDX SBOM, and advisory matching stays stella's (the same OSV semantics
 * and replayable inventory whichever tool listed the packages).
 */
export const ENGINES = ['builtin', 'syft', 'trivy'] as const;
export type ScanEngine = (typeof ENGINES)[number];

const ECOSYSTEMS: Record<string, Package['ecosystem']> = { deb: 'deb', apk: 'apk', npm: 'npm', pypi: 'pypi' };

/** `pkg:type/namespace/name@version?qualifiers` → parts (percent-decoded). */
export function parsePurl(
  purl: string,
): { type: string; namespace: string | null; name: string; version: string | null; qualifiers: Record<string, string> } | null {
  const m = /^pkg:([a-zA-Z][a-zA-Z0-9.+-]*)\/([^@?#]+)(?:@([^?#]+))?(?:\?([^#]*))?/.exec(purl);
  if (!m) return null;
  const path = m[2]!.split('/').map(decodeURIComponent);
  const name = path.pop()!;
  const qualifiers: Record<string, string> = {};
  for (const kv of (m[4] ?? '').split('&').filter(Boolean)) {
    const [k, v = ''] = kv.split('=');
    qualifiers[decodeURIComponent(k!)] = decodeURIComponent(v);
  }
  return { type: m[1]!.toLowerCase(), namespace: path.length ? path.join('/') : null, name, version: m[3] ? decodeURIComponent(m[3]) : null, qualifiers };
}

/** Packages stella can match, from an SBOM's components (others stay in the SBOM only). */
export function packagesFromBom(bom: CycloneDxBom): Package[] {
  const out: Package[] = [];
  for (const c of (bom.components ?? []) as { purl?: string }[]) {
    const p = c.purl ? parsePurl(c.purl) : null;
    const ecosystem = p && ECOSYSTEMS[p.type];
    if (!p || !ecosystem || !p.version) continue;
    const name = ecosystem === 'npm' && p.namespace ? `${p.namespace}/${p.name}` : p.name;
    const src = p.qualifiers.upstream;
    out.push({
      ecosystem,
      name,
      version: p.version,
      purl: c.purl!,
      locations: [],
      ...(p.qualifiers.arch ? { arch: p.qualifiers.arch } : {}),
      ...(src ? { source: { name: src.split('@')[0]!, version: src.split('@')[1] ?? p.version } } : {}),
    });
  }
  return out.sort((a, b) => a.purl.localeCompare(b.purl));
}

function toolArgs(engine: Exclude<ScanEngine, 'builtin'>, path: string, format: string): string[] {
  if (engine === 'syft') {
    const scheme = format === 'oci-layout' ? 'oci-dir' : format === 'docker-archive' ? 'docker-archive' : 'oci-archive';
    return ['scan', `${scheme}:${path}`, '-o', 'cyclonedx-json', '-q'];
  }
  return ['image', '--input', path, '--format', 'cyclonedx', '--quiet'];
}

/**
 * Runs the tool and normalises its SBOM so a retried activity stores the same bytes: the
 * timestamp becomes the scan time and the serial number is derived from the content.
 */
export function externalSbom(
  engine: Exclude<ScanEngine, 'builtin'>,
  path: string,
  format: string,
  scanTime: string,
  artifactDigest: string,
): { sbom: CycloneDxBom; bytes: Buffer; digest: string; packages: Package[]; tool: string } {
  const bin = which(engine);
  if (!bin)
    throw new StellaError(
      'UNAVAILABLE',
      `scanner engine is ${engine} but ${engine} is not on the worker's PATH (install it, or: stella scanner config set engine builtin)`,
    );
  const r = spawnSync(bin, toolArgs(engine, path, format), { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024, timeout: 30 * 60_000 });
  if (r.status !== 0)
    throw new StellaError(
      'INTEGRITY',
      `${engine} failed on ${path}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').slice(-2).join(' | ')}`,
    );
  let bom: CycloneDxBom & { metadata?: Record<string, unknown>; serialNumber?: string; components?: unknown[] };
  try {
    bom = JSON.parse(r.stdout);
  } catch {
    throw new StellaError('INTEGRITY', `${engine} did not print a JSON SBOM`);
  }
  if ((bom as { bomFormat?: string }).bomFormat !== 'CycloneDX') throw new StellaError('INTEGRITY', `${engine} output is not a CycloneDX SBOM`);
  const version = (spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout || '').trim().split('\n')[0] ?? engine;
  const components = [...((bom.components ?? []) as { purl?: string; 'bom-ref'?: string; name?: string }[])].sort((a, b) =>
    (a.purl ?? a['bom-ref'] ?? a.name ?? '').localeCompare(b.purl ?? b['bom-ref'] ?? b.name ?? ''),
  );
  const body = {
    ...bom,
    components,
    metadata: {
      ...(bom.metadata ?? {}),
      timestamp: scanTime,
      properties: [
        ...(((bom.metadata ?? {}) as { properties?: unknown[] }).properties ?? []),
        { name: 'stella:artifact-digest', value: artifactDigest },
        { name: 'stella:engine', value: version },
      ],
    },
  };
  const h = createHash('sha256')
    .update(canonicalJson({ ...body, serialNumber: null }))
    .digest('hex');
  const sbom = {
    ...body,
    serialNumber: `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`,
  } as CycloneDxBom;
  const bytes = Buffer.from(canonicalJson(sbom));
  return { sbom, bytes, digest: sha256Digest(bytes), packages: packagesFromBom(sbom), tool: version };
}

/**
 * Installed-package metadata of other language ecosystems: Ruby gem specifications, .NET
 * `*.deps.json` and PHP composer's `vendor/composer/installed.json`.
 */
import type { ImageFilesystem } from '../layers';
import { buildPurl } from '../purl';
import { spdxLicenses } from './licenses';
import type { DetectContext, Detector, Package } from './types';

const GEMSPEC_RE = /\/specifications\/[^/]+\.gemspec$/;
const DEPS_JSON_RE = /\.deps\.json$/;
const COMPOSER_RE = /\/vendor\/composer\/installed\.json$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A gemspec as RubyGems writes it under specifications/: `s.name = "x".freeze` etc. */
export function parseGemspec(text: string, location: string): Package | undefined {
  const field = (k: string) => new RegExp(`^\\s*s\\.${k}\\s*=\\s*["']([^"']+)["']`, 'm').exec(text)?.[1];
  const name = field('name');
  const version = field('version');
  if (!name || !version) return undefined;
  const list = /^\s*s\.licenses?\s*=\s*\[?([^\n\]]*)/m.exec(text)?.[1] ?? '';
  const licenses = [...list.matchAll(/["']([^"']+)["']/g)].flatMap((m) => spdxLicenses(m[1]!));
  return {
    ecosystem: 'gem',
    name,
    version,
    purl: buildPurl({ type: 'gem', name, version }),
    locations: [location],
    ...(licenses.length ? { licenses } : {}),
    cpes: [`cpe:2.3:a:${name}:${name}:${version}:*:*:*:*:ruby:*:*`],
  };
}

/** .NET dependency manifest: every library of type "package" ("Name/Version" keys). */
export function parseDepsJson(text: string, location: string): Package[] {
  const doc = JSON.parse(text) as unknown;
  if (!isRecord(doc) || !isRecord(doc.libraries)) return [];
  const out: Package[] = [];
  for (const [key, lib] of Object.entries(doc.libraries)) {
    if (!isRecord(lib) || lib.type !== 'package') continue;
    const slash = key.lastIndexOf('/');
    if (slash <= 0) continue;
    const name = key.slice(0, slash);
    const version = key.slice(slash + 1);
    out.push({ ecosystem: 'nuget', name, version, purl: buildPurl({ type: 'nuget', name, version }), locations: [location] });
  }
  return out;
}

/** composer installed.json: v1 is an array, v2 `{ packages: [...] }`. */
export function parseComposerInstalled(text: string, location: string): Package[] {
  const doc = JSON.parse(text) as unknown;
  const list = Array.isArray(doc) ? doc : isRecord(doc) && Array.isArray(doc.packages) ? doc.packages : [];
  const out: Package[] = [];
  for (const p of list) {
    if (!isRecord(p) || typeof p.name !== 'string' || typeof p.version !== 'string') continue;
    const [vendor, name] = p.name.includes('/') ? [p.name.slice(0, p.name.indexOf('/')), p.name.slice(p.name.indexOf('/') + 1)] : [undefined, p.name];
    const licenses = Array.isArray(p.license) ? p.license.filter((l): l is string => typeof l === 'string').flatMap(spdxLicenses) : [];
    out.push({
      ecosystem: 'composer',
      name: p.name,
      version: p.version,
      purl: buildPurl({ type: 'composer', ...(vendor ? { namespace: vendor } : {}), name: name!, version: p.version }),
      locations: [location],
      ...(licenses.length ? { licenses } : {}),
      ...(vendor ? { cpes: [`cpe:2.3:a:${vendor}:${name}:${p.version.replace(/^v/, '')}:*:*:*:*:*:*:*`] } : {}),
    });
  }
  return out;
}

function each(fs: ImageFilesystem, ctx: DetectContext, re: RegExp, parse: (text: string, location: string) => Package[]): Package[] {
  const out: Package[] = [];
  for (const p of fs.capturedFiles()) {
    if (!re.test(p)) continue;
    try {
      out.push(...parse(fs.readFile(p)!.toString('utf8'), p));
    } catch (e) {
      ctx.warnings.push(`${p}: unreadable package metadata (${(e as Error).message})`);
    }
  }
  return out;
}

export const gemDetector: Detector = {
  name: 'gem',
  wants: (p) => GEMSPEC_RE.test(p),
  detect: (fs, ctx) => each(fs, ctx, GEMSPEC_RE, (t, l) => [parseGemspec(t, l)].filter((x): x is Package => x !== undefined)),
};

export const dotnetDetector: Detector = {
  name: 'dotnet',
  wants: (p) => DEPS_JSON_RE.test(p),
  detect: (fs, ctx) => each(fs, ctx, DEPS_JSON_RE, parseDepsJson),
};

export const composerDetector: Detector = {
  name: 'composer',
  wants: (p) => COMPOSER_RE.test(p),
  detect: (fs, ctx) => each(fs, ctx, COMPOSER_RE, parseComposerInstalled),
};

/**
 * Package URLs (https://github.com/package-url/purl-spec) built with packageurl-js, which
 * validates each type's rules and encodes namespace, name, qualifiers and #subpath. The
 * version alone is encoded strictly here (':' and '+' percent-encoded: deb epochs become
 * `1%3A2.38.1`, as the spec's examples and syft write them); packageurl-js leaves both raw.
 */
import { PackageURL } from 'packageurl-js';

function strict(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface PurlParts {
  type: string;
  namespace?: string;
  name: string;
  version?: string;
  qualifiers?: Record<string, string | undefined>;
  subpath?: string;
}

export function buildPurl(p: PurlParts): string {
  const qualifiers: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.qualifiers ?? {})) if (typeof v === 'string' && v !== '') qualifiers[k.toLowerCase()] = v;
  const hasQ = Object.keys(qualifiers).length > 0;
  const base = new PackageURL(
    p.type.toLowerCase(),
    p.namespace || undefined,
    p.name,
    undefined,
    hasQ ? qualifiers : undefined,
    p.subpath || undefined,
  ).toString();
  if (!p.version) return base;
  // Namespace and name never hold a raw '?' or '#': the first one starts the qualifiers or subpath.
  const cut = base.search(/[?#]/);
  const at = cut === -1 ? base.length : cut;
  return `${base.slice(0, at)}@${strict(p.version)}${base.slice(at)}`;
}

/** Split an npm package name into purl namespace (scope) and name; npm purls are lowercase. */
export function npmPurl(name: string, version: string): string {
  const lower = name.toLowerCase();
  const slash = lower.startsWith('@') ? lower.indexOf('/') : -1;
  return slash > 0
    ? buildPurl({ type: 'npm', namespace: lower.slice(0, slash), name: lower.slice(slash + 1), version })
    : buildPurl({ type: 'npm', name: lower, version });
}

/** The purl spec's pypi rule: lowercase, '_' replaced with '-'. */
export function pypiPurl(name: string, version: string): string {
  return buildPurl({ type: 'pypi', name: name.toLowerCase().replace(/_/g, '-'), version });
}

/** Parse a purl (packageurl-js); null when malformed. Keeps the #subpath. */
export function parsePurlString(purl: string): PackageURL | null {
  try {
    return PackageURL.fromString(purl);
  } catch {
    return null;
  }
}

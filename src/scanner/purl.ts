/**
 * Package URL construction (https://github.com/package-url/purl-spec).
 * Components are percent-encoded except unreserved characters and ':' (which the
 * spec says must not be encoded); qualifiers are sorted by key and empty ones dropped.
 */
function enc(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%3A/gi, ':');
}

export interface PurlParts {
  type: string;
  namespace?: string;
  name: string;
  version?: string;
  qualifiers?: Record<string, string | undefined>;
}

export function buildPurl(p: PurlParts): string {
  let out = `pkg:${p.type.toLowerCase()}/`;
  if (p.namespace) out += `${p.namespace.split('/').filter(Boolean).map(enc).join('/')}/`;
  out += enc(p.name);
  if (p.version) out += `@${enc(p.version)}`;
  const q = Object.entries(p.qualifiers ?? {})
    .filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== '')
    .map(([k, v]) => [k.toLowerCase(), v] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (q.length) out += `?${q.map(([k, v]) => `${k}=${enc(v)}`).join('&')}`;
  return out;
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

/**
 * Licences as SPDX ids: package metadata (rpm License, gemspec, composer, Debian machine-readable
 * copyright files) mostly uses SPDX ids already; the common Debian/Fedora short names are mapped.
 * Anything unknown is kept verbatim rather than guessed.
 */
import spdxExpressionParse from 'spdx-expression-parse';

const ALIASES: Record<string, string> = {
  'gpl-1': 'GPL-1.0-only',
  'gpl-1+': 'GPL-1.0-or-later',
  'gpl-2': 'GPL-2.0-only',
  'gpl-2+': 'GPL-2.0-or-later',
  'gpl-3': 'GPL-3.0-only',
  'gpl-3+': 'GPL-3.0-or-later',
  gplv2: 'GPL-2.0-only',
  'gplv2+': 'GPL-2.0-or-later',
  gplv3: 'GPL-3.0-only',
  'gplv3+': 'GPL-3.0-or-later',
  'lgpl-2': 'LGPL-2.0-only',
  'lgpl-2+': 'LGPL-2.0-or-later',
  'lgpl-2.1': 'LGPL-2.1-only',
  'lgpl-2.1+': 'LGPL-2.1-or-later',
  'lgplv2+': 'LGPL-2.1-or-later',
  'lgpl-3': 'LGPL-3.0-only',
  'lgpl-3+': 'LGPL-3.0-or-later',
  'agpl-3': 'AGPL-3.0-only',
  'agpl-3+': 'AGPL-3.0-or-later',
  'gfdl-1.2': 'GFDL-1.2-only',
  'gfdl-1.3': 'GFDL-1.3-only',
  'gfdl-1.2+': 'GFDL-1.2-or-later',
  'gfdl-1.3+': 'GFDL-1.3-or-later',
  'apache-2': 'Apache-2.0',
  'apache-2.0': 'Apache-2.0',
  'asl 2.0': 'Apache-2.0',
  expat: 'MIT',
  mit: 'MIT',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  isc: 'ISC',
  zlib: 'Zlib',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  artistic: 'Artistic-1.0-Perl',
  'artistic-2.0': 'Artistic-2.0',
  'psf-2': 'PSF-2.0',
  'python-2.0': 'Python-2.0',
  'cc0-1.0': 'CC0-1.0',
  'cc-by-3.0': 'CC-BY-3.0',
  'cc-by-sa-3.0': 'CC-BY-SA-3.0',
  'cc-by-4.0': 'CC-BY-4.0',
  'cc-by-sa-4.0': 'CC-BY-SA-4.0',
  'ofl-1.1': 'OFL-1.1',
  openssl: 'OpenSSL',
  curl: 'curl',
  'unicode-dfs-2016': 'Unicode-DFS-2016',
  ruby: 'Ruby',
  postgresql: 'PostgreSQL',
  unlicense: 'Unlicense',
  wtfpl: 'WTFPL',
  '0bsd': '0BSD',
  'bsl-1.0': 'BSL-1.0',
  'epl-1.0': 'EPL-1.0',
  'epl-2.0': 'EPL-2.0',
  'cddl-1.0': 'CDDL-1.0',
  x11: 'X11',
  ftl: 'FTL',
  sleepycat: 'Sleepycat',
  'bzip2-1.0.6': 'bzip2-1.0.6',
};

/** One licence name → its SPDX id when known, else the name as written. */
export function spdxId(name: string): string {
  const t = name.trim();
  return ALIASES[t.toLowerCase()] ?? URLS.find(([re]) => re.test(t))?.[1] ?? t;
}

/** Licence URLs as Java manifests (Bundle-License) and pom files give them. */
const URLS: Array<[RegExp, string]> = [
  [/^https?:\/\/(?:www\.)?apache\.org\/licenses\/LICENSE-2\.0(?:\.txt|\.html)?$/i, 'Apache-2.0'],
  [/^https?:\/\/(?:www\.)?opensource\.org\/licenses\/MIT(?:\.php)?$/i, 'MIT'],
  [/^https?:\/\/(?:www\.)?eclipse\.org\/legal\/epl-2\.0\/?$/i, 'EPL-2.0'],
  [/^https?:\/\/(?:www\.)?eclipse\.org\/legal\/epl-v10\.html$/i, 'EPL-1.0'],
];

/** A valid SPDX expression (a single id, `X WITH Y`, or a compound) — not merely a name. */
export function isSpdxExpression(s: string): boolean {
  try {
    spdxExpressionParse(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * A licence field (`GPL-2+ or Artistic`, `MIT and BSD`, `(MIT OR Apache-2.0)`) → the distinct
 * licences it names, each as an SPDX id where known. Exceptions ("with …") stay with their licence.
 */
export function spdxLicenses(field: string): string[] {
  const names = field
    .replace(/[()]/g, ' ')
    .split(/\s+(?:and|or|AND|OR|&)\s+|,\s*|\s*\|\s*/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return [...new Set(names.map(spdxId))];
}

/**
 * Licences of a Debian machine-readable copyright file (DEP-5): the `License:` fields of
 * its paragraphs. Files not in that format yield nothing (their free text is not guessed at).
 */
export function debCopyrightLicenses(text: string): string[] {
  if (!/^Format:\s*\S*copyright-format/m.test(text)) return [];
  const out = new Set<string>();
  for (const m of text.matchAll(/^License:[ \t]*(\S[^\n]*)$/gm)) for (const l of spdxLicenses(m[1]!)) out.add(l);
  return [...out].sort();
}

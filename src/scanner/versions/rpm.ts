/**
 * RPM version ordering (rpmvercmp, as rpm's lib/rpmvercmp.c): versions compare as
 * [epoch:]version[-release]; each part is split into alphanumeric segments, numeric segments
 * compare as numbers and beat alphabetic ones, `~` sorts before anything (pre-releases), `^`
 * after the end but before any further segment (post-releases). A missing epoch is 0.
 */

function isAlnum(c: string): boolean {
  return /[0-9A-Za-z]/.test(c);
}

/** rpmvercmp on one part (version or release): -1, 0 or 1. */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]!) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]!) && b[j] !== '~' && b[j] !== '^') j++;
    // Tilde: sorts before everything, even the end.
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    // Caret: like the end of the string, but sorts after it.
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (!(i < a.length && j < b.length)) break;
    const numeric = /[0-9]/.test(a[i]!);
    const seg = numeric ? /^[0-9]+/ : /^[A-Za-z]+/;
    const sa = seg.exec(a.slice(i))?.[0] ?? '';
    const sb = seg.exec(b.slice(j))?.[0] ?? '';
    i += sa.length;
    j += sb.length;
    // Segments of different types: numeric is newer.
    if (!sb) return numeric ? 1 : -1;
    if (numeric) {
      const na = sa.replace(/^0+/, '');
      const nb = sb.replace(/^0+/, '');
      if (na.length !== nb.length) return na.length > nb.length ? 1 : -1;
      if (na !== nb) return na > nb ? 1 : -1;
    } else if (sa !== sb) return sa > sb ? 1 : -1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

export interface Evr {
  epoch: number;
  version: string;
  release: string;
}

export function parseRpmVersion(v: string): Evr {
  const m = /^(?:(\d+):)?([^-]+)(?:-(.+))?$/.exec(v.trim());
  if (!m) throw new Error(`not an RPM version: ${JSON.stringify(v)}`);
  return { epoch: m[1] ? Number(m[1]) : 0, version: m[2]!, release: m[3] ?? '' };
}

export function isValidRpmVersion(v: string): boolean {
  return /^(?:\d+:)?[^-:\s]+(?:-[^-\s]+)?$/.test(v.trim()) && /[0-9A-Za-z]/.test(v);
}

/** Compare two [epoch:]version[-release] strings; a release compares only when both have one. */
export function compareRpm(a: string, b: string): number {
  const x = parseRpmVersion(a);
  const y = parseRpmVersion(b);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  const v = rpmvercmp(x.version, y.version);
  if (v !== 0 || !x.release || !y.release) return v;
  return rpmvercmp(x.release, y.release);
}

/**
 * Debian version comparison, following dpkg's lib/dpkg/version.c:
 * [epoch:]upstream_version[-debian_revision]; the revision is everything after the
 * *last* hyphen, the epoch everything before the *first* colon. Within each part,
 * non-digit runs compare by a character order where '~' sorts before everything
 * (even the end of the string), letters before non-letters, and digit runs compare
 * numerically.
 */
export interface DpkgVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

export function parseDpkgVersion(v: string): DpkgVersion {
  const s = v.trim();
  if (s === '') throw new Error('empty dpkg version');
  if (/\s/.test(s)) throw new Error(`dpkg version ${JSON.stringify(v)} contains whitespace`);
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon !== -1) {
    const e = s.slice(0, colon);
    if (!/^\d+$/.test(e)) throw new Error(`dpkg version ${JSON.stringify(v)} has a non-numeric epoch`);
    epoch = Number(e);
    if (!Number.isSafeInteger(epoch)) throw new Error(`dpkg version ${JSON.stringify(v)} epoch too large`);
    rest = s.slice(colon + 1);
  }
  const hyphen = rest.lastIndexOf('-');
  const upstream = hyphen === -1 ? rest : rest.slice(0, hyphen);
  const revision = hyphen === -1 ? '' : rest.slice(hyphen + 1);
  if (upstream === '') throw new Error(`dpkg version ${JSON.stringify(v)} has an empty upstream version`);
  return { epoch, upstream, revision };
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlpha = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** dpkg's order(): digits (and end of string) 0, '~' -1, letters their code, others code+256. */
function order(c: number | undefined): number {
  if (c === undefined || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 126) return -1; // '~'
  return c + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(i < a.length ? a.charCodeAt(i) : undefined);
      const bc = order(j < b.length ? b.charCodeAt(j) : undefined);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a.charCodeAt(i) === 48) i++;
    while (b.charCodeAt(j) === 48) j++;
    while (i < a.length && j < b.length && isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && isDigit(a.charCodeAt(i))) return 1;
    if (j < b.length && isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/** Compare two Debian versions: negative, zero or positive. Throws on unparseable input. */
export function compareDpkg(a: string, b: string): number {
  const va = parseDpkgVersion(a);
  const vb = parseDpkgVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch > vb.epoch ? 1 : -1;
  const r = verrevcmp(va.upstream, vb.upstream);
  if (r !== 0) return Math.sign(r);
  return Math.sign(verrevcmp(va.revision, vb.revision));
}

export function isValidDpkgVersion(v: string): boolean {
  try {
    parseDpkgVersion(v);
    return true;
  } catch {
    return false;
  }
}

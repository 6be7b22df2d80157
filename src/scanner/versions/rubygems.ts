/**
 * RubyGems version order (OSV ecosystem "RubyGems"), as Gem::Version compares: the version is
 * split into numeric and alphabetic segments; trailing zero segments (of the release part and
 * of the prerelease part) do not count; numbers compare numerically, letters lexically, and a
 * letter segment (a prerelease: 1.0.a, 2.0.0.rc1) sorts before any number at the same place.
 */
type Segment = bigint | string;

const VALID = /^[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

export function isValidGemVersion(v: string): boolean {
  return VALID.test(v.trim());
}

function segments(v: string): Segment[] {
  // Gem::Version treats "1.0-rc1" as "1.0.pre.rc1".
  const s = v.trim().replace(/-/g, '.pre.');
  const raw = (s.match(/[0-9]+|[a-z]+/gi) ?? []).map((x): Segment => (/^[0-9]/.test(x) ? BigInt(x) : x));
  const firstString = raw.findIndex((x) => typeof x === 'string');
  const release = firstString === -1 ? raw : raw.slice(0, firstString);
  const pre = firstString === -1 ? [] : raw.slice(firstString);
  const trim = (xs: Segment[]) => {
    let n = xs.length;
    while (n > 0 && xs[n - 1] === 0n) n--;
    return xs.slice(0, n);
  };
  return [...trim(release), ...trim(pre)];
}

export function compareGem(a: string, b: string): number {
  const l = segments(a);
  const r = segments(b);
  for (let i = 0; i < Math.max(l.length, r.length); i++) {
    const x = l[i] ?? 0n;
    const y = r[i] ?? 0n;
    if (x === y) continue;
    if (typeof x === 'string' && typeof y !== 'string') return -1;
    if (typeof x !== 'string' && typeof y === 'string') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

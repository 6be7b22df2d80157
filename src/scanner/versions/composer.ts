/**
 * Composer (Packagist) version order, as PHP's version_compare() orders the versions Composer
 * normalises: a leading "v" is dropped, '-', '_' and '+' separate parts like '.', and a change
 * between digits and letters starts a new part. Parts compare as numbers, or by their special
 * form: dev < alpha = a < beta = b < RC = rc < (a number) < pl = p; any other word sorts first.
 */
const VALID = /^v?\d+(?:[.\-_+]?[0-9A-Za-z]+)*$/;

export function isValidComposerVersion(v: string): boolean {
  return VALID.test(v.trim());
}

function parts(v: string): string[] {
  return v
    .trim()
    .replace(/^v(?=\d)/i, '')
    .replace(/[-_+]/g, '.')
    .replace(/(\d)(?=[a-z])|([a-z])(?=\d)/gi, '$1$2.')
    .split('.')
    .filter((p) => p !== '');
}

const SPECIAL: Record<string, number> = { dev: 0, alpha: 1, a: 1, beta: 2, b: 2, rc: 3, '#': 4, pl: 5, p: 5 };
const rank = (p: string) => (/^\d+$/.test(p) ? SPECIAL['#']! : (SPECIAL[p.toLowerCase()] ?? -1));

export function compareComposer(a: string, b: string): number {
  const l = parts(a);
  const r = parts(b);
  for (let i = 0; i < Math.max(l.length, r.length); i++) {
    const x = l[i];
    const y = r[i];
    // version_compare: a missing part is below a number and above a special word ("1.0" > "1.0rc1", "1.0" < "1.0.1", "1.0" < "1.0pl1").
    if (x === undefined) return /^\d+$/.test(y!) || rank(y!) === SPECIAL.pl ? -1 : 1;
    if (y === undefined) return /^\d+$/.test(x) || rank(x) === SPECIAL.pl ? 1 : -1;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
      continue;
    }
    const d = rank(x) - rank(y);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

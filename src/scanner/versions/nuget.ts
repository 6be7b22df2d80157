/**
 * NuGet version order (OSV ecosystem "NuGet"): up to four numeric parts (missing ones are 0),
 * then SemVer 2.0 prerelease precedence with labels compared case-insensitively; build metadata
 * after '+' is ignored. A release sorts after its prereleases.
 */
const VALID = /^\d+(?:\.\d+){0,3}(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z.-]+)?$/;

export function isValidNugetVersion(v: string): boolean {
  return VALID.test(v.trim());
}

function parse(v: string): { nums: bigint[]; pre: string[] } {
  const s = v.trim().split('+')[0]!;
  const dash = s.indexOf('-');
  const release = dash === -1 ? s : s.slice(0, dash);
  const nums = release.split('.').map((x) => BigInt(x));
  while (nums.length < 4) nums.push(0n);
  return {
    nums,
    pre:
      dash === -1
        ? []
        : s
            .slice(dash + 1)
            .toLowerCase()
            .split('.'),
  };
}

export function compareNuget(a: string, b: string): number {
  if (!isValidNugetVersion(a) || !isValidNugetVersion(b)) throw new Error(`invalid NuGet version ${JSON.stringify(isValidNugetVersion(a) ? b : a)}`);
  const l = parse(a);
  const r = parse(b);
  for (let i = 0; i < 4; i++) if (l.nums[i] !== r.nums[i]) return l.nums[i]! < r.nums[i]! ? -1 : 1;
  if (!l.pre.length || !r.pre.length) return l.pre.length === r.pre.length ? 0 : l.pre.length ? -1 : 1;
  for (let i = 0; i < Math.max(l.pre.length, r.pre.length); i++) {
    const x = l.pre[i];
    const y = r.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) return BigInt(x) < BigInt(y) ? -1 : 1;
    if (xn !== yn) return xn ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

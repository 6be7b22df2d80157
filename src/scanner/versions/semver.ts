import semver from 'semver';

/**
 * SemVer 2.0 comparison (npm packages, and OSV ranges of type SEMVER whatever the
 * ecosystem). A leading "v" is tolerated as OSV producers sometimes keep it.
 */
function clean(v: string): string {
  const s = v.trim().replace(/^v(?=\d)/, '');
  if (!semver.valid(s)) throw new Error(`invalid semver version ${JSON.stringify(v)}`);
  return s;
}

export function isValidSemver(v: string): boolean {
  return semver.valid(v.trim().replace(/^v(?=\d)/, '')) !== null;
}

export function compareSemver(a: string, b: string): number {
  return semver.compare(clean(a), clean(b));
}

import { compareApk, isValidApkVersion } from './apk';
import { compareDpkg, isValidDpkgVersion } from './dpkg';
import { compareMaven, isValidMavenVersion } from './maven';
import { comparePep440, isValidPep440 } from './pypi';
import { compareRpm, isValidRpmVersion } from './rpm';
import { compareSemver, isValidSemver } from './semver';

export { compareApk, isValidApkVersion } from './apk';
export { compareDpkg, isValidDpkgVersion, parseDpkgVersion } from './dpkg';
export { compareMaven, isValidMavenVersion } from './maven';
export { comparePep440, isValidPep440, normalizePypiName } from './pypi';
export { compareRpm, isValidRpmVersion, parseRpmVersion, rpmvercmp } from './rpm';
export { compareSemver, isValidSemver } from './semver';

export type VersionScheme = 'dpkg' | 'apk' | 'rpm' | 'semver' | 'pep440' | 'maven';

export interface VersionComparator {
  scheme: VersionScheme;
  compare(a: string, b: string): number;
  valid(v: string): boolean;
}

export const COMPARATORS: Record<VersionScheme, VersionComparator> = {
  dpkg: { scheme: 'dpkg', compare: compareDpkg, valid: isValidDpkgVersion },
  apk: { scheme: 'apk', compare: compareApk, valid: isValidApkVersion },
  rpm: { scheme: 'rpm', compare: compareRpm, valid: isValidRpmVersion },
  semver: { scheme: 'semver', compare: compareSemver, valid: isValidSemver },
  pep440: { scheme: 'pep440', compare: comparePep440, valid: isValidPep440 },
  maven: { scheme: 'maven', compare: compareMaven, valid: isValidMavenVersion },
};

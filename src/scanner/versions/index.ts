import { compareApk, isValidApkVersion } from './apk';
import { compareComposer, isValidComposerVersion } from './composer';
import { compareDpkg, isValidDpkgVersion } from './dpkg';
import { compareMaven, isValidMavenVersion } from './maven';
import { compareNuget, isValidNugetVersion } from './nuget';
import { comparePep440, isValidPep440 } from './pypi';
import { compareRpm, isValidRpmVersion } from './rpm';
import { compareGem, isValidGemVersion } from './rubygems';
import { compareSemver, isValidSemver } from './semver';

export { compareApk, isValidApkVersion } from './apk';
export { compareComposer, isValidComposerVersion } from './composer';
export { compareDpkg, isValidDpkgVersion, parseDpkgVersion } from './dpkg';
export { compareMaven, isValidMavenVersion } from './maven';
export { compareNuget, isValidNugetVersion } from './nuget';
export { comparePep440, isValidPep440, normalizePypiName } from './pypi';
export { compareRpm, isValidRpmVersion, parseRpmVersion, rpmvercmp } from './rpm';
export { compareGem, isValidGemVersion } from './rubygems';
export { compareSemver, isValidSemver } from './semver';

export type VersionScheme = 'dpkg' | 'apk' | 'rpm' | 'semver' | 'pep440' | 'maven' | 'rubygems' | 'nuget' | 'composer';

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
  rubygems: { scheme: 'rubygems', compare: compareGem, valid: isValidGemVersion },
  nuget: { scheme: 'nuget', compare: compareNuget, valid: isValidNugetVersion },
  composer: { scheme: 'composer', compare: compareComposer, valid: isValidComposerVersion },
};

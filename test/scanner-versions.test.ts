import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareApk,
  compareComposer,
  compareDpkg,
  compareGem,
  compareMaven,
  compareNuget,
  comparePep440,
  compareSemver,
  isValidApkVersion,
  isValidDpkgVersion,
  normalizePypiName,
} from '../src/scanner/versions/index';

type Table = Array<[string, '<' | '=' | '>', string]>;

function check(cmp: (a: string, b: string) => number, table: Table) {
  for (const [a, op, b] of table) {
    const want = op === '<' ? -1 : op === '=' ? 0 : 1;
    expect(Math.sign(cmp(a, b)) || 0, `${a} ${op} ${b}`).toBe(want);
    expect(Math.sign(cmp(b, a)) || 0, `${b} vs ${a} (reversed)`).toBe(-want || 0);
  }
}

describe('dpkg versions', () => {
  it('follows the dpkg algorithm', () => {
    check(compareDpkg, [
      ['1.0~rc1', '<', '1.0'],
      ['1.0~~', '<', '1.0~'],
      ['1.0~', '<', '1.0'],
      ['1:0.9', '>', '2.0'],
      ['0:1.0', '=', '1.0'],
      ['1.0-1', '<', '1.0-2'],
      ['1.0', '=', '1.0-0'],
      ['1.0', '<', '1.0-1'],
      ['1.0a', '<', '1.0+'], // letters sort before non-letters
      ['1.0+', '<', '1.0.1'],
      ['1.0.0', '>', '1.0'],
      ['1.01', '=', '1.1'], // digit runs compare numerically
      ['2.36-9+deb12u4', '<', '2.36-9+deb12u10'],
      ['2.36-9+deb12u4', '<', '2.36-9+deb12u4+b1'],
      ['7.88.1-10+deb12u5', '>', '7.88.1-10+deb12u4'],
      ['1.2.3-1ubuntu0.1', '>', '1.2.3-1'],
      ['1.0-1~bpo11+1', '<', '1.0-1'],
      ['10', '>', '9'],
    ]);
  });

  it('splits epoch at the first colon and revision at the last hyphen', () => {
    check(compareDpkg, [
      ['1:2.0-1-2', '>', '1:2.0-1-1'],
      ['2:1.0', '>', '1:9.9'],
    ]);
    expect(isValidDpkgVersion('x:1.0')).toBe(false);
    expect(isValidDpkgVersion('')).toBe(false);
  });

  it('is a total order on generated versions (antisymmetric, transitive)', () => {
    const part = fc.stringMatching(/^[0-9][0-9a-z.+~]{0,6}$/);
    const ver = fc
      .tuple(fc.nat({ max: 3 }), part, fc.option(fc.stringMatching(/^[0-9a-z.+~]{1,4}$/), { nil: undefined }))
      .map(([e, u, r]) => `${e ? `${e}:` : ''}${u}${r ? `-${r}` : ''}`);
    fc.assert(
      fc.property(ver, ver, ver, (a, b, c) => {
        expect(Math.sign(compareDpkg(a, b)) || 0).toBe(-Math.sign(compareDpkg(b, a)) || 0);
        if (compareDpkg(a, b) <= 0 && compareDpkg(b, c) <= 0) expect(compareDpkg(a, c)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('apk versions', () => {
  it('follows apk-tools rules', () => {
    check(compareApk, [
      ['1.2.3_rc1', '<', '1.2.3'],
      ['1.2.3', '<', '1.2.3-r1'],
      ['1.2.3-r1', '<', '1.2.3_p1'],
      ['1.2.3_rc1', '<', '1.2.3-r1'],
      ['1.2.3_alpha', '<', '1.2.3_beta'],
      ['1.2.3_beta', '<', '1.2.3_pre'],
      ['1.2.3_pre', '<', '1.2.3_rc'],
      ['1.2.3_alpha1', '>', '1.2.3_alpha'],
      ['1.2.3_cvs', '<', '1.2.3_svn'],
      ['1.2.3_git', '<', '1.2.3_hg'],
      ['1.2.3_hg', '<', '1.2.3_p'],
      ['1.2.3a', '>', '1.2.3'],
      ['1.2.3a', '<', '1.2.3b'],
      ['1.2', '<', '1.2.0'],
      ['1.10', '>', '1.9'],
      ['1.01', '<', '1.1'], // leading zero: string comparison, as in Gentoo
      ['3.1.4-r5', '>', '3.1.4-r1'],
      ['3.0.13-r0', '>', '3.0.12-r1'],
      ['1.2.3-r10', '>', '1.2.3-r9'],
      ['1.2.3~a1b2-r1', '>', '1.2.3-r1'],
      ['20240101', '>', '20231231'],
    ]);
  });

  it('validates like apk', () => {
    for (const v of ['1.2.3', '1.2.3-r0', '1.0_rc1-r2', '2.4a', '1.2.3_p1_rc2-r3']) expect(isValidApkVersion(v), v).toBe(true);
    for (const v of ['', 'a1', '1.2.3-r', '1.2.3_foo', '1..2', '1.2-3']) expect(isValidApkVersion(v), v).toBe(false);
    expect(() => compareApk('1.0', 'x')).toThrow(/invalid apk version/);
  });
});

describe('PEP 440 versions', () => {
  it('orders dev < pre < final < post', () => {
    check(comparePep440, [
      ['1.0.dev0', '<', '1.0a1'],
      ['1.0a1', '<', '1.0b1'],
      ['1.0b1', '<', '1.0rc1'],
      ['1.0rc1', '<', '1.0'],
      ['1.0a1', '<', '1.0'],
      ['1.0', '<', '1.0.post1'],
      ['1.0', '=', '1.0.0'],
      ['1.0.post1', '<', '1.1.dev0'],
      ['1!0.1', '>', '2.0'],
      ['2.0.0', '<', '10.0.0'],
    ]);
    expect(() => comparePep440('1.0', 'not a version')).toThrow();
  });

  it('normalises names per PEP 503', () => {
    expect(normalizePypiName('Typing_Extensions')).toBe('typing-extensions');
    expect(normalizePypiName('zope.interface')).toBe('zope-interface');
    expect(normalizePypiName('A__B-.c')).toBe('a-b-c');
  });
});

describe('npm (semver) versions', () => {
  it('orders prereleases per SemVer 2.0', () => {
    check(compareSemver, [
      ['1.0.0-alpha', '<', '1.0.0-alpha.1'],
      ['1.0.0-alpha.1', '<', '1.0.0-alpha.beta'],
      ['1.0.0-alpha.beta', '<', '1.0.0-beta'],
      ['1.0.0-beta.2', '<', '1.0.0-beta.11'],
      ['1.0.0-rc.1', '<', '1.0.0'],
      ['1.0.0', '=', 'v1.0.0'],
      ['1.0.0+build.1', '=', '1.0.0'],
      ['2.0.0', '>', '1.99.99'],
    ]);
    expect(() => compareSemver('1.0', '1.0.0')).toThrow(/invalid semver/);
  });
});

describe('Maven versions (ComparableVersion order)', () => {
  const ascending = (list: string[]) => {
    for (let i = 0; i + 1 < list.length; i++) check(compareMaven, [[list[i]!, '<', list[i + 1]!]]);
  };
  it('orders qualifiers: alpha < beta < milestone < rc = cr < snapshot < release < sp < other', () => {
    // Vectors from Maven's own ComparableVersionTest.
    ascending(['1-alpha2snapshot', '1-alpha2', '1-alpha-123', '1-beta-2', '1-beta123', '1-m2', '1-m11', '1-rc', '1-cr2', '1-rc123', '1-SNAPSHOT', '1']);
    ascending(['1', '1-sp', '1-sp2', '1-sp123', '1-abc', '1-def', '1-pom-1', '1-1-snapshot', '1-1', '1-2', '1-123']);
  });
  it('orders numbers, with trailing zeros and release words ignored', () => {
    ascending([
      '2.0',
      '2.0.2',
      '2.0.123',
      '2.1.0',
      '2.1-a',
      '2.1b',
      '2.1-c',
      '2.1-1',
      '2.1.0.1',
      '2.2',
      '2.123',
      '11.a2',
      '11.a11',
      '11.b2',
      '11.b11',
      '11.m2',
      '11.m11',
      '11',
      '11.a',
      '11b',
      '11c',
      '11m',
    ]);
    check(compareMaven, [
      ['1', '=', '1.0.0'],
      ['1-a1', '=', '1-alpha-1'],
      ['1ga', '=', '1'],
      ['1final', '=', '1'],
      ['1cr', '=', '1rc'],
      ['2.15.0-rc1', '<', '2.15.0'],
      ['2.0-beta9', '<', '2.0'],
      ['2.14.1', '<', '2.15.0'],
      ['12345678901234567890.1', '>', '12345678901234567889.9'],
    ]);
  });
});

describe('RubyGems, NuGet and Composer versions', () => {
  it('RubyGems: Gem::Version order (letters are prereleases, trailing zeros ignored)', () => {
    check(compareGem, [
      ['1.0', '=', '1.0.0'],
      ['1.0.a', '<', '1.0'],
      ['2.0.0.rc1', '<', '2.0.0'],
      ['1.0-rc1', '<', '1.0'],
      ['1.9.3', '<', '1.10'],
      ['1.0.0.pre', '<', '1.0.0.rc'],
      ['6.1.7.3', '<', '6.1.7.10'],
    ]);
  });
  it('NuGet: four numeric parts, then case-insensitive SemVer prerelease; metadata ignored', () => {
    check(compareNuget, [
      ['1.0', '=', '1.0.0.0'],
      ['1.0.0-beta', '<', '1.0.0'],
      ['1.0.0-Beta.2', '<', '1.0.0-beta.11'],
      ['1.2.3.4', '>', '1.2.3'],
      ['1.0.0+abc', '=', '1.0.0'],
      ['13.0.1', '<', '13.0.3'],
    ]);
    expect(() => compareNuget('not a version', '1.0')).toThrow(/invalid NuGet version/);
  });
  it('Composer: version_compare order (dev < alpha < beta < RC < release < pl; v prefix dropped)', () => {
    check(compareComposer, [
      ['1.0.0-dev', '<', '1.0.0-alpha'],
      ['1.0.0-beta', '<', '1.0.0-RC1'],
      ['1.0.0-RC1', '<', '1.0.0'],
      ['1.0.0', '<', '1.0.0-pl1'],
      ['v5.4.1', '<', '5.4.2'],
      ['2.10', '>', '2.9'],
      ['1.0.0-alpha2', '<', '1.0.0-alpha10'],
    ]);
  });
});

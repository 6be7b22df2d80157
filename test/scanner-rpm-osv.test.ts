import { describe, expect, it } from 'vitest';
import type { Package } from '../src/scanner/detectors/types';
import { explainMatch, feedFromRecords, matchPackages } from '../src/scanner/osv';
import { compareRpm, rpmvercmp } from '../src/scanner/versions/index';

/** Red Hat family advisories via OSV, matched with RPM's own version ordering (rpmvercmp). */
describe('RPM version ordering (vectors from rpm tests/rpmvercmp.at)', () => {
  const cases: [string, string, number][] = [
    ['1.0', '1.0', 0],
    ['1.0', '2.0', -1],
    ['2.0.1', '2.0', 1],
    ['2.0.1a', '2.0.1', 1],
    ['5.5p1', '5.5p2', -1],
    ['5.5p10', '5.5p2', 1],
    ['10xyz', '10.1xyz', -1],
    ['xyz10', 'xyz10.1', -1],
    ['xyz.4', '8', -1],
    ['1.0aa', '1.0a', 1],
    ['2.0a', '2.0.1', -1],
    ['a+', 'a', 0],
    ['fc4', 'fc.4', 0],
    ['010', '10', 0],
    ['1.0', '1.0.0', -1],
    ['1.0~rc1', '1.0', -1],
    ['1.0~rc1', '1.0~rc2', -1],
    ['1.0~rc1~git123', '1.0~rc1', -1],
    ['1.0^', '1.0', 1],
    ['1.0^git1', '1.01', -1],
    ['1.0^20160101', '1.0.1', -1],
    ['1.0~rc1^git1', '1.0~rc1', 1],
    ['1.0^git1~pre', '1.0^git1', -1],
  ];
  it.each(cases)('rpmvercmp(%s, %s) = %i', (a, b, want) => {
    expect(rpmvercmp(a, b)).toBe(want);
    expect(rpmvercmp(b, a)).toBe(-want || 0);
  });
  it('epoch first, then version, then release (missing epoch is 0; a missing release matches any)', () => {
    expect(compareRpm('1:1.0-1', '2.0-1')).toBe(1);
    expect(compareRpm('0:3.0.7-24.el9', '3.0.7-24.el9')).toBe(0);
    expect(compareRpm('3.0.7-24.el9', '3.0.7-25.el9')).toBe(-1);
    expect(compareRpm('3.0.7-24.el9_2', '3.0.7-24.el9')).toBe(1);
    expect(compareRpm('3.0.7', '3.0.7-24.el9')).toBe(0);
  });
});

describe('Red Hat / Rocky advisories from OSV', () => {
  const pkg = (version: string): Package => ({
    ecosystem: 'rpm',
    name: 'openssl',
    version,
    purl: `pkg:rpm/redhat/openssl@${encodeURIComponent(version)}?arch=x86_64`,
    locations: ['var/lib/rpm/rpmdb.sqlite'],
  });
  const record = (id: string, ecosystem: string, fixed: string) => ({
    id,
    summary: `openssl ${id}`,
    affected: [{ package: { ecosystem, name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }],
  });
  const feed = feedFromRecords([
    record('RHSA-2026:0001', 'Red Hat:enterprise_linux:9::baseos', '1:3.0.7-25.el9_3'),
    record('RHSA-2026:0002', 'Red Hat:enterprise_linux:8::baseos', '1:1.1.1k-12.el8'),
    record('RLSA-2026:0003', 'Rocky Linux:9', '1:3.0.7-26.el9'),
  ]);
  const rhel = { id: 'rhel', versionId: '9.4', idLike: ['fedora'], location: '/etc/os-release' };

  it('matches the release stream of the installed distribution, with the epoch and release compared as rpm does', () => {
    const found = matchPackages([pkg('1:3.0.7-24.el9')], feed, rhel as never);
    expect(found.map((f) => [f.id, f.fixedVersion])).toEqual([['RHSA-2026:0001', '1:3.0.7-25.el9_3']]);
    expect(matchPackages([pkg('1:3.0.7-25.el9_3')], feed, rhel as never)).toEqual([]);
    // el9_3 > el9 at the same version: a package with the z-stream fix is not affected by a fix in -25.el9.
    const rocky = { id: 'rocky', versionId: '9.3', idLike: ['rhel', 'centos', 'fedora'], location: '/etc/os-release' };
    expect(matchPackages([pkg('1:3.0.7-26.el9')], feed, rocky as never)).toEqual([]);
    expect(matchPackages([pkg('1:3.0.7-25.el9_3')], feed, rocky as never).map((f) => f.id)).toEqual(['RLSA-2026:0003']);
    const why = explainMatch(feed.records[0]!, { ecosystem: 'Red Hat:enterprise_linux:9::baseos', name: 'openssl' }, '1:3.0.7-24.el9', 'rpm');
    expect(why).toMatchObject({ scheme: 'rpm', ranges: [{ type: 'ECOSYSTEM', contains: true, fixed: '1:3.0.7-25.el9_3' }] });
  });
});

describe('Go modules, the Go toolchain and Rust crates from OSV', () => {
  const feed = feedFromRecords([
    {
      id: 'GO-2026-0001',
      affected: [{ package: { ecosystem: 'Go', name: 'golang.org/x/net' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '0.23.0' }] }] }],
    },
    {
      id: 'GO-2026-0002',
      affected: [{ package: { ecosystem: 'Go', name: 'stdlib' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '1.21.0-0' }, { fixed: '1.21.9' }] }] }],
    },
    {
      id: 'RUSTSEC-2026-0001',
      affected: [
        { package: { ecosystem: 'crates.io', name: 'smallvec' }, ranges: [{ type: 'SEMVER', events: [{ introduced: '1.0.0' }, { fixed: '1.6.1' }] }] },
      ],
    },
  ]);
  const p = (ecosystem: 'golang' | 'cargo', name: string, version: string): Package => ({
    ecosystem,
    name,
    version,
    purl: `pkg:${ecosystem}/${name}@${version}`,
    locations: ['app'],
  });
  it('matches module paths with a v-prefixed version, the toolchain by its go version, and crates', () => {
    const found = matchPackages(
      [
        p('golang', 'golang.org/x/net', 'v0.22.0'),
        p('golang', 'golang.org/x/net', 'v0.23.0'),
        p('golang', 'stdlib', 'go1.21.5'),
        p('golang', 'stdlib', 'go1.22'),
        p('cargo', 'smallvec', '1.6.0'),
        p('cargo', 'smallvec', '1.6.1'),
      ],
      feed,
    );
    expect(found.map((f) => `${f.id} ${f.package.name}@${f.package.version} fixed ${f.fixedVersion}`).sort()).toEqual([
      'GO-2026-0001 golang.org/x/net@v0.22.0 fixed 0.23.0',
      'GO-2026-0002 stdlib@go1.21.5 fixed 1.21.9',
      'RUSTSEC-2026-0001 smallvec@1.6.0 fixed 1.6.1',
    ]);
  });
});

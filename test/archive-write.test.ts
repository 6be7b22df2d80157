import { describe, expect, it, vi, afterEach } from 'vitest';
import fc from 'fast-check';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { sha256Hex } from '../src/lib/hash';
import { ArchiveError, ArchiveSecurityError, buildTar, createTarStream, readTar, writeTarFile, type TarBufferEntry } from '../src/archive/index';
import { encodeEntryHeader } from '../src/archive/tar-write';

const ENTRIES: TarBufferEntry[] = [
  { path: 'zeta.txt', data: 'last\n' },
  { path: 'alpha.json', data: Buffer.from('{"a":1}') },
  { path: 'blobs', type: 'directory' },
  { path: 'blobs/sha256/0f/0f00', data: new Uint8Array([0, 1, 2, 3]) },
  { path: 'blobs/sha256/ab/ab12', data: 'x'.repeat(1000) },
  { path: 'ünïcødé/文件.txt', data: 'utf8 path' },
  { path: `deep/${'d'.repeat(120)}/file`, data: 'long path' },
  { path: 'empty', data: '' },
];

/** Independent reader (tar-stream) so we are not only checking our writer against our reader. */
async function listWithTarStream(tar: Buffer) {
  const out: { header: tarStream.Header; body: Buffer }[] = [];
  const extract = tarStream.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.push({ header: entry.header, body: Buffer.concat(chunks) });
    }
  })();
  extract.end(tar);
  await done;
  return out;
}

async function collect(readable: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of readable) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('buildTar determinism', () => {
  it('gives byte-identical output for the same entries in any order and at any time', async () => {
    vi.useFakeTimers({ now: new Date('2020-01-01T00:00:00Z') });
    const first = sha256Hex(buildTar(ENTRIES));
    vi.setSystemTime(new Date('2031-06-15T12:34:56Z'));
    const second = sha256Hex(buildTar([...ENTRIES].reverse()));
    expect(second).toBe(first);

    fc.assert(
      fc.property(fc.shuffledSubarray(ENTRIES, { minLength: ENTRIES.length, maxLength: ENTRIES.length }), (shuffled) => {
        expect(sha256Hex(buildTar(shuffled))).toBe(first);
      }),
      { numRuns: 25 },
    );
  });

  it('writes sorted entries with fixed metadata, readable by tar-stream', async () => {
    const entries = await listWithTarStream(buildTar(ENTRIES, { mtime: 1_700_000_000 }));
    const names = entries.map((e) => e.header.name);
    const expected = ENTRIES.map((e) => ('type' in e ? `${e.path}/` : e.path)).sort((a, b) =>
      Buffer.compare(Buffer.from(a.replace(/\/$/, '')), Buffer.from(b.replace(/\/$/, ''))),
    );
    expect(names).toEqual(expected);
    for (const { header, body } of entries) {
      expect(header.uid).toBe(0);
      expect(header.gid).toBe(0);
      expect(header.uname).toBe('');
      expect(header.gname).toBe('');
      expect(header.mtime?.getTime()).toBe(1_700_000_000_000);
      expect(header.mode).toBe(header.type === 'directory' ? 0o755 : 0o644);
      const src = ENTRIES.find((e) => e.path === header.name.replace(/\/$/, ''))!;
      if ('data' in src) expect(body.equals(Buffer.from(src.data as string | Uint8Array))).toBe(true);
    }
  });

  it('uses plain ustar for short ASCII paths and pax only when needed', () => {
    const tar = buildTar([{ path: 'a.txt', data: 'a' }]);
    expect(tar.length).toBe(512 + 512 + 1024);
    expect(tar.toString('latin1', 257, 265)).toBe('ustar\u000000');
    expect(tar[156]).toBe('0'.charCodeAt(0));
    const pax = buildTar([{ path: 'ü.txt', data: 'a' }]);
    expect(String.fromCharCode(pax[156]!)).toBe('x');
    expect(pax.toString('utf8', 512, 512 + 20)).toContain('path=ü.txt');
  });

  it('encodes sizes beyond 8 GiB with a pax size record', () => {
    const header = encodeEntryHeader('huge.bin', 'file', 9_000_000_000, 0);
    expect(String.fromCharCode(header[156]!)).toBe('x');
    expect(header.toString('latin1', 512, 1024)).toContain(' size=9000000000\n');
  });

  it.each([['../evil'], ['/etc/passwd'], ['a/../../b'], ['a//b'], ['./a'], ['a\\..\\b'], ['a\u0000b'], ['C:/x'], ['']])('refuses unsafe path %j', (path) => {
    expect(() => buildTar([{ path, data: 'x' }])).toThrow(ArchiveSecurityError);
  });

  it('refuses duplicates and files that would shadow directories', () => {
    expect(() =>
      buildTar([
        { path: 'a', data: '1' },
        { path: 'a', data: '2' },
      ]),
    ).toThrow(/duplicate/);
    expect(() =>
      buildTar([
        { path: 'a', data: '1' },
        { path: 'a/b', data: '2' },
      ]),
    ).toThrow(/nested under file/);
    expect(() =>
      buildTar([
        { path: 'd', type: 'directory' },
        { path: 'd/', type: 'directory' },
      ]),
    ).toThrow(/duplicate/);
  });
});

describe('createTarStream', () => {
  it('streams the same bytes as buildTar for sorted input', async () => {
    const sorted = [...ENTRIES].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    const tar = createTarStream();
    const out = collect(tar.readable);
    for (const e of sorted) {
      if ('type' in e) await tar.addDirectory(e.path);
      else {
        const data = typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data);
        // Alternate sources: buffers and chunked streams.
        const source = data.length > 10 ? Readable.from([data.subarray(0, 7), data.subarray(7)]) : data;
        await tar.addFile(e.path, data.length, source);
      }
    }
    const stats = await tar.finalize();
    const bytes = await out;
    expect(bytes.equals(buildTar(ENTRIES))).toBe(true);
    expect(stats).toEqual({ entries: ENTRIES.length, bytes: bytes.length });
  });

  it('asserts strictly increasing path order', async () => {
    const tar = createTarStream();
    void collect(tar.readable).catch(() => {});
    await tar.addFile('b', 1, 'b');
    await expect(tar.addFile('a', 1, 'a')).rejects.toThrow(/increasing path order/);
    await expect(tar.addFile('b', 1, 'b')).rejects.toThrow(/increasing path order/);
    // Byte order, not UTF-16 order: U+FF5E sorts after U+1F600 in UTF-16 (surrogates) but before it in UTF-8.
    const t2 = createTarStream();
    void collect(t2.readable).catch(() => {});
    await t2.addFile('\u{FF5E}', 1, 'x');
    await expect(t2.addFile('\u{1F600}', 1, 'x')).resolves.toBeUndefined();
  });

  it('aborts the archive when a source is shorter or longer than declared', async () => {
    for (const [declared, chunks] of [
      [10, ['12345']],
      [3, ['12345']],
    ] as const) {
      const tar = createTarStream();
      const out = collect(tar.readable);
      await expect(tar.addFile('f', declared, Readable.from(chunks.map((c) => Buffer.from(c))))).rejects.toThrow(ArchiveError);
      await expect(out).rejects.toThrow(ArchiveError);
      await expect(tar.addFile('g', 1, 'g')).rejects.toThrow();
    }
  });

  it('refuses overlapping add calls and adds after finalize', async () => {
    const tar = createTarStream();
    void collect(tar.readable);
    const slow = Readable.from(
      (async function* () {
        await new Promise((r) => setTimeout(r, 20));
        yield Buffer.from('ab');
      })(),
    );
    const p = tar.addFile('a', 2, slow);
    await expect(tar.addFile('b', 1, 'b')).rejects.toThrow(/previous entry/);
    await p;
    await tar.finalize();
    await expect(tar.addFile('c', 1, 'c')).rejects.toThrow(/finalized/);
  });
});

describe('writeTarFile', () => {
  it('writes atomically and leaves nothing behind on failure', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stella-archive-'));
    try {
      const dest = join(dir, 'out.tar.gz');
      const n = await writeTarFile(dest, { compression: 'gzip' }, async (tar) => {
        await tar.addFile('a.txt', 2, 'hi');
        return 1;
      });
      expect(n).toBe(1);
      const entries: string[] = [];
      for await (const e of readTar(dest)) entries.push(`${e.path}=${(await e.buffer()).toString()}`);
      expect(entries).toEqual(['a.txt=hi']);

      const failed = join(dir, 'failed.tar');
      await expect(
        writeTarFile(failed, {}, async (tar) => {
          await tar.addFile('a.txt', 2, 'hi');
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await readdir(dir)).sort()).toEqual(['out.tar.gz']);
      // A pipeline failure surfaces its own cause, not a generic "stream closed".
      await expect(writeTarFile(join(dir, 'no-such-dir', 'x.tar'), {}, (tar) => tar.addFile('a', 1, 'a'))).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await readFile(dest)).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

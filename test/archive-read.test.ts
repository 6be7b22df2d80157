import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type * as tarStream from 'tar-stream';
import { craftTar } from './support/crafted-tar';
import {
  ArchiveError,
  ArchiveFormatError,
  ArchiveSecurityError,
  buildTar,
  compressBuffer,
  extractTar,
  readTar,
  type TarReadOptions,
} from '../src/archive/index';

// ---------------------------------------------------------------------------------------------
// crafting helpers

const pack = craftTar;

/** A single raw ustar header block, for cases tar-stream will not write (e.g. a 2 GB size with no body). */
function ustar(fields: { name: string; size?: number; type?: string; linkname?: string }): Buffer {
  const b = Buffer.alloc(512);
  b.write(fields.name, 0, 100, 'utf8');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write((fields.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.fill(0x20, 148, 156);
  b.write(fields.type ?? '0', 156, 'latin1');
  if (fields.linkname) b.write(fields.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

function withBody(header: Buffer, body: string): Buffer {
  const data = Buffer.from(body);
  return Buffer.concat([header, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** A pax extended ('x') or global ('g') header with its records. */
function pax(records: Record<string, string>, type: 'x' | 'g' = 'x'): Buffer {
  const rec = (k: string, v: string) => {
    const body = ` ${k}=${v}\n`;
    const n = Buffer.byteLength(body);
    let len = n + String(n).length;
    if (String(len).length !== String(n).length) len = n + String(len).length;
    return `${len}${body}`;
  };
  const text = Object.entries(records)
    .map(([k, v]) => rec(k, v))
    .join('');
  return withBody(ustar({ name: `PaxHeaders/${type}`, type, size: Buffer.byteLength(text) }), text);
}

const END = Buffer.alloc(1024);

async function readAll(input: Parameters<typeof readTar>[0], opts?: TarReadOptions) {
  const out: { path: string; type: string; body: string }[] = [];
  for await (const e of readTar(input, opts)) out.push({ path: e.path, type: e.type, body: (await e.buffer()).toString() });
  return out;
}

async function securityError(p: Promise<unknown>): Promise<ArchiveSecurityError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArchiveSecurityError);
  return err as ArchiveSecurityError;
}

// ---------------------------------------------------------------------------------------------

describe('readTar', () => {
  it('reads files and directories from a buffer, a path, a Readable and compressed input', async () => {
    const tar = buildTar([
      { path: 'a.txt', data: 'alpha' },
      { path: 'dir', type: 'directory' },
      { path: 'dir/b.txt', data: 'bravo' },
    ]);
    const expected = [
      { path: 'a.txt', type: 'file', body: 'alpha' },
      { path: 'dir', type: 'directory', body: '' },
      { path: 'dir/b.txt', type: 'file', body: 'bravo' },
    ];
    expect(await readAll(tar)).toEqual(expected);
    expect(await readAll(Readable.from([tar.subarray(0, 100), tar.subarray(100, 700), tar.subarray(700)]))).toEqual(expected);
    expect(await readAll(await compressBuffer(tar, 'gzip'))).toEqual(expected);
    expect(await readAll(await compressBuffer(tar, 'zstd'))).toEqual(expected);
    const dir = await mkdtemp(join(tmpdir(), 'stella-archive-'));
    try {
      await writeFile(join(dir, 'x.tar'), tar);
      expect(await readAll(join(dir, 'x.tar'))).toEqual(expected);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('hands out bodies lazily: unread bodies are skipped, stale bodies refuse to read', async () => {
    const tar = buildTar([
      { path: 'a', data: 'A'.repeat(2000) },
      { path: 'b', data: 'B'.repeat(3000) },
      { path: 'c', data: 'C'.repeat(10) },
    ]);
    const it = readTar(tar);
    const a = (await it.next()).value!;
    // Read just one chunk of `a`, then move on.
    for await (const chunk of a.data) {
      expect(chunk[0]).toBe(0x41);
      break;
    }
    const b = (await it.next()).value!; // `b` is skipped entirely
    const c = (await it.next()).value!;
    expect(c.path).toBe('c');
    expect((await c.buffer()).toString()).toBe('C'.repeat(10));
    expect(() => b.data[Symbol.asyncIterator]()).toThrow(ArchiveError);
    expect(() => c.data[Symbol.asyncIterator]()).toThrow(/only be read once/);
    expect((await it.next()).done).toBe(true);
  });

  it('closes the input when the caller stops early, even on a stalled stream', async () => {
    const tar = buildTar([
      { path: 'a', data: 'a'.repeat(100) },
      { path: 'b', data: 'b'.repeat(100) },
    ]);
    for (const compressed of [tar, await compressBuffer(tar, 'gzip')]) {
      // Sends the first 1.5 KiB, then never sends more and never ends.
      const stalled = new Readable({ read() {} });
      stalled.push(compressed.subarray(0, compressed === tar ? 1536 : compressed.length - 30));
      for await (const e of readTar(stalled)) {
        expect(e.path).toBe('a');
        break;
      }
      expect(stalled.destroyed).toBe(true);
    }
    const dir = await mkdtemp(join(tmpdir(), 'stella-archive-'));
    try {
      await writeFile(join(dir, 'x.tar.gz'), await compressBuffer(tar, 'gzip'));
      for await (const e of readTar(join(dir, 'x.tar.gz'))) {
        expect(e.path).toBe('a');
        break;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('accepts GNU long names, ./ prefixes and harmless global pax headers', async () => {
    const long = `${'n'.repeat(150)}/file`;
    const raw = Buffer.concat([
      pax({ comment: '0123abcd' }, 'g'), // what `git archive` writes
      pax({ mtime: '1.5', 'SCHILY.xattr.user.x': 'y' }), // applies to dot.txt; harmless keys are ignored
      withBody(ustar({ name: './dot.txt', size: 1 }), 'd'),
      withBody(ustar({ name: '././@LongLink', type: 'L', size: long.length + 1 }), `${long}\0`),
      withBody(ustar({ name: 'truncated', size: 2 }), 'ln'),
      END,
    ]);
    expect((await readAll(raw)).map((e) => e.path)).toEqual(['dot.txt', long]);
  });

  it('round-trips arbitrary safe entries through buildTar (property)', async () => {
    const segment = fc.stringMatching(/^[A-Za-z0-9._\u00e9\u4e2d-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
    const entry = fc.record({ path: fc.array(segment, { minLength: 1, maxLength: 4 }).map((p) => p.join('/')), data: fc.uint8Array({ maxLength: 1500 }) });
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(entry, { selector: (e) => e.path, maxLength: 8 }), async (entries) => {
        let tar: Buffer;
        try {
          tar = buildTar(entries);
        } catch (err) {
          // Random paths can put a file where another entry needs a directory; the writer must say so.
          expect((err as ArchiveSecurityError).code).toBe('duplicate-entry');
          return;
        }
        const back = new Map<string, Buffer>();
        for await (const e of readTar(tar)) back.set(e.path, await e.buffer());
        expect(back.size).toBe(entries.length);
        for (const e of entries) expect(back.get(e.path)?.equals(Buffer.from(e.data))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('fails only with archive errors on corrupted input (fuzz)', async () => {
    const base = buildTar([
      { path: 'dir', type: 'directory' },
      { path: 'dir/a.txt', data: 'a'.repeat(700) },
      { path: `long/${'l'.repeat(120)}`, data: 'pax' },
      { path: 'z', data: '' },
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(base.length),
        async (edits, cut) => {
          const mutated = Buffer.from(base.subarray(0, Math.max(cut, 1)));
          for (const [at, value] of edits) if (at < mutated.length) mutated[at] = value;
          try {
            await readAll(mutated, { maxEntryBytes: 1 << 20, maxTotalBytes: 1 << 20, maxEntries: 50 });
          } catch (err) {
            expect(err).toBeInstanceOf(ArchiveError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('fails only with archive errors on corrupted gzip and zstd input (fuzz)', async () => {
    const tar = buildTar([
      { path: 'a.txt', data: 'hello '.repeat(300) },
      { path: 'b.bin', data: Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff)) },
    ]);
    for (const compression of ['gzip', 'zstd'] as const) {
      const packed = await compressBuffer(tar, compression);
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(fc.nat(packed.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), async (edits) => {
          const mutated = Buffer.from(packed);
          for (const [at, value] of edits) mutated[at] = value;
          try {
            await readAll(mutated, { maxEntryBytes: 1 << 20, maxTotalBytes: 1 << 20, maxEntries: 50 });
          } catch (err) {
            expect(err).toBeInstanceOf(ArchiveError);
          }
        }),
        { numRuns: 150 },
      );
    }
  });

  describe('refuses', () => {
    const cases: [string, () => Promise<Buffer>, string, string][] = [
      ['../evil', () => pack([{ header: { name: '../evil' }, body: 'x' }]), 'unsafe-path', '../evil'],
      ['/etc/x', () => pack([{ header: { name: '/etc/x' }, body: 'x' }]), 'unsafe-path', '/etc/x'],
      ['a/../../b', () => pack([{ header: { name: 'a/../../b' }, body: 'x' }]), 'unsafe-path', 'a/../../b'],
      ['backslash traversal', () => pack([{ header: { name: '..\\..\\evil' }, body: 'x' }]), 'unsafe-path', '..\\..\\evil'],
      [
        'NUL in a pax path',
        async () => Buffer.concat([pax({ path: 'ok\u0000/../../x' }), withBody(ustar({ name: 'x', size: 1 }), 'x'), END]),
        'unsafe-path',
        'ok\u0000/../../x',
      ],
      ['a drive letter', () => pack([{ header: { name: 'C:/Windows/x' }, body: 'x' }]), 'unsafe-path', 'C:/Windows/x'],
      ['a symlink', () => pack([{ header: { name: 'link', type: 'symlink', linkname: '/etc/passwd' } }]), 'link-entry', 'link'],
      ['a hardlink', () => pack([{ header: { name: 'hard', type: 'link', linkname: '/etc/passwd' } }]), 'link-entry', 'hard'],
      ['a character device', () => pack([{ header: { name: 'dev', type: 'character-device', devmajor: 1, devminor: 3 } }]), 'special-entry', 'dev'],
      ['a fifo', () => pack([{ header: { name: 'fifo', type: 'fifo' } }]), 'special-entry', 'fifo'],
      [
        'a duplicate path',
        () =>
          pack([
            { header: { name: 'a' }, body: '1' },
            { header: { name: 'a' }, body: '2' },
          ]),
        'duplicate-entry',
        'a',
      ],
      [
        'a ./-prefixed duplicate',
        () =>
          pack([
            { header: { name: 'a' }, body: '1' },
            { header: { name: './a' }, body: '2' },
          ]),
        'duplicate-entry',
        './a',
      ],
      [
        'a file where a directory is',
        () =>
          pack([
            { header: { name: 'd/x' }, body: '1' },
            { header: { name: 'd' }, body: '2' },
          ]),
        'duplicate-entry',
        'd',
      ],
      [
        'an entry below a file',
        () =>
          pack([
            { header: { name: 'f' }, body: '1' },
            { header: { name: 'f/x' }, body: '2' },
          ]),
        'duplicate-entry',
        'f/x',
      ],
      ['a sparse file', async () => Buffer.concat([ustar({ name: 'sparse', type: 'S' }), END]), 'unsupported-entry', 'sparse'],
      ['a path-setting global header', async () => Buffer.concat([pax({ path: 'evil/x' }, 'g'), END]), 'unsupported-entry', 'PaxHeaders/g'],
      [
        'a 2 GB entry over the limit, without reading it',
        async () => Buffer.concat([ustar({ name: 'big.bin', size: 2 * 1024 ** 3 })]),
        'entry-too-large',
        'big.bin',
      ],
      [
        'data after the end marker',
        async () => Buffer.concat([buildTar([{ path: 'a', data: 'a' }]), withBody(ustar({ name: 'hidden', size: 1 }), 'h'), END]),
        'trailing-data',
        '',
      ],
    ];

    it.each(cases)('%s', async (_label, make, code, entry) => {
      const err = await securityError(readAll(await make(), { maxEntryBytes: 1024 * 1024 }));
      expect(err.code).toBe(code);
      if (entry) {
        expect(err.entry).toBe(entry);
        expect(err.message).toContain(JSON.stringify(entry));
      }
    });

    it('too many entries and too many total bytes', async () => {
      const tar = buildTar([
        { path: 'a', data: '12345' },
        { path: 'b', data: '12345' },
        { path: 'c', data: '12345' },
      ]);
      expect((await securityError(readAll(tar, { maxEntries: 2 }))).code).toBe('too-many-entries');
      const total = await securityError(readAll(tar, { maxTotalBytes: 12 }));
      expect([total.code, total.entry]).toEqual(['total-too-large', 'c']);
      expect((await readAll(tar, { maxEntries: 3, maxTotalBytes: 15, maxEntryBytes: 5 })).length).toBe(3);
    });

    it('a pax size beyond the limit', async () => {
      const raw = Buffer.concat([pax({ size: String(9_000_000_000) }), ustar({ name: 'huge' })]);
      const err = await securityError(readAll(raw));
      expect([err.code, err.entry]).toEqual(['entry-too-large', 'huge']);
    });
  });

  describe('reports damage as ArchiveFormatError', () => {
    it.each([
      [
        'a bad checksum',
        async () => {
          const t = buildTar([{ path: 'a', data: 'a' }]);
          t[0] = 'b'.charCodeAt(0);
          return t;
        },
      ],
      ['a truncated body', async () => buildTar([{ path: 'a', data: 'x'.repeat(5000) }]).subarray(0, 2000)],
      ['a missing end marker', async () => buildTar([{ path: 'a', data: 'a' }]).subarray(0, 1024)],
      [
        'truncated gzip',
        async () => {
          const gz = await compressBuffer(buildTar([{ path: 'a', data: 'a'.repeat(100_000) }]), 'gzip');
          return gz.subarray(0, gz.length - 100);
        },
      ],
      ['not a tar', async () => Buffer.from('hello world'.repeat(100))],
      ['a malformed pax record', async () => Buffer.concat([withBody(ustar({ name: 'p', type: 'x', size: 12 }), '99 path=abc\n'), ustar({ name: 'x' }), END])],
    ])('%s', async (_label, make) => {
      await expect(readAll(await make())).rejects.toThrow(ArchiveFormatError);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('extractTar', () => {
  let base: string;
  let dest: string;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'stella-extract-'));
    dest = join(base, 'dest');
  });
  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  /** Every path under `base`, so a test can assert nothing appeared anywhere else. */
  async function tree(dir = base, prefix = ''): Promise<string[]> {
    const out: string[] = [];
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const rel = prefix + d.name;
      out.push(d.isDirectory() ? `${rel}/` : rel);
      if (d.isDirectory()) out.push(...(await tree(join(dir, d.name), `${rel}/`)));
    }
    return out.sort();
  }

  it('writes files and directories with fixed modes', async () => {
    const tar = buildTar([
      { path: 'a.txt', data: 'alpha' },
      { path: 'sub', type: 'directory' },
      { path: 'sub/deeper/b.bin', data: Buffer.from([1, 2, 3]) },
    ]);
    const result = await extractTar(tar, dest);
    expect(result).toEqual({ files: ['a.txt', 'sub/deeper/b.bin'], directories: ['sub'], bytes: 8 });
    expect(await readFile(join(dest, 'a.txt'), 'utf8')).toBe('alpha');
    expect([...(await readFile(join(dest, 'sub/deeper/b.bin')))]).toEqual([1, 2, 3]);
    expect((await stat(join(dest, 'a.txt'))).mode & 0o777 & ~0o022).toBe(0o644 & ~0o022);
    expect(await tree()).toEqual(['dest/', 'dest/a.txt', 'dest/sub/', 'dest/sub/deeper/', 'dest/sub/deeper/b.bin']);
  });

  it.each<[string, Partial<tarStream.Header> & { name: string }]>([
    ['../evil', { name: '../evil' }],
    ['absolute', { name: '/ABS' }],
    ['a/../../b', { name: 'a/../../b' }],
    ['symlink', { name: 'link', type: 'symlink', linkname: '..' }],
    ['hardlink', { name: 'hard', type: 'link', linkname: '../outside' }],
  ])('refuses %s, removes what it wrote and writes nothing outside', async (_label, header) => {
    const name = header.name === '/ABS' ? join(base, 'abs-evil') : header.name;
    const tar = await pack([
      { header: { name: 'good/first.txt' }, body: 'written before the bad entry' },
      { header: { ...header, name }, body: header.type ? undefined : 'evil' },
      { header: { name: 'later.txt' }, body: 'never reached' },
    ]);
    await expect(extractTar(tar, dest)).rejects.toThrow(ArchiveSecurityError);
    expect(await tree()).toEqual([]); // dest was created by us, so it is gone too
    expect(existsSync(join(base, 'evil'))).toBe(false);
    expect(existsSync(join(base, 'abs-evil'))).toBe(false);
  });

  it('refuses a 2 GB declared entry over the limit without writing anything', async () => {
    const tar = Buffer.concat([withBody(ustar({ name: 'ok', size: 2 }), 'ok'), ustar({ name: 'big', size: 2 * 1024 ** 3 })]);
    const err = await securityError(extractTar(tar, dest, { maxEntryBytes: 100 * 1024 * 1024 }));
    expect([err.code, err.entry]).toEqual(['entry-too-large', 'big']);
    expect(await tree()).toEqual([]);
  });

  it('never follows a symlink already in the destination', async () => {
    await mkdir(dest);
    await mkdir(join(base, 'outside'));
    await symlink(join(base, 'outside'), join(dest, 'link'));
    const err = await securityError(extractTar(buildTar([{ path: 'link/x.txt', data: 'x' }]), dest));
    expect([err.code, err.entry]).toEqual(['outside-destination', 'link/x.txt']);
    await symlink(join(base, 'outside', 'target'), join(dest, 'file-link'));
    const err2 = await securityError(extractTar(buildTar([{ path: 'file-link', data: 'x' }]), dest));
    expect(err2.code).toBe('exists');
    expect(await readdir(join(base, 'outside'))).toEqual([]);
    expect((await lstat(join(dest, 'link'))).isSymbolicLink()).toBe(true); // pre-existing content untouched
  });

  it('never overwrites existing files and keeps pre-existing content on failure', async () => {
    await mkdir(dest);
    await writeFile(join(dest, 'keep.txt'), 'original');
    const tar = buildTar([
      { path: 'fresh.txt', data: 'new' },
      { path: 'keep.txt', data: 'overwritten?' },
    ]);
    const err = await securityError(extractTar(tar, dest));
    expect([err.code, err.entry]).toEqual(['exists', 'keep.txt']);
    expect(await readFile(join(dest, 'keep.txt'), 'utf8')).toBe('original');
    expect(await tree()).toEqual(['dest/', 'dest/keep.txt']);
  });

  it('cleans up after a damaged archive too', async () => {
    const tar = buildTar([
      { path: 'a/one.txt', data: 'one' },
      { path: 'b/two.txt', data: 'x'.repeat(5000) },
    ]);
    await expect(extractTar(tar.subarray(0, 2500), dest)).rejects.toThrow(ArchiveFormatError);
    expect(await tree()).toEqual([]);
  });
});

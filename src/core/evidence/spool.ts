/** Upload spooling: a request body streamed to a private temp file, hashed and size-capped on the way. */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StellaError } from '../../lib/errors';

/** Spool directories made by this process: not made again for every upload. */
const spoolDirs = new Set<string>();

/**
 * Streams an upload to a private temp file while hashing it, refusing anything over
 * `maxBytes` as it arrives (never buffered whole). With `sync`, the file is fsynced before it is
 * handed over, so an ingest can rename it into the blob store as it is (the one read of the
 * body). The caller removes the file (a no-op once it was moved).
 */
export async function spoolUpload(
  input: NodeJS.ReadableStream,
  dir: string,
  maxBytes: number,
  opts: { sync?: boolean; keepBytes?: number } = {},
): Promise<{ path: string; digest: string; size: number; data?: Buffer }> {
  const path = join(dir, `upload-${Date.now()}-${randomBytes(6).toString('hex')}.part`);
  const fh = await openSpoolFile(dir, path);
  const hash = createHash('sha256');
  let size = 0;
  // A small body is also kept in memory, so whoever inspects it does not read the file back.
  const keep = opts.keepBytes ?? 0;
  const kept: Buffer[] = [];
  const meter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      size += chunk.length;
      if (size > maxBytes) return cb(new StellaError('TOO_LARGE', `upload exceeds the limit of ${maxBytes} bytes (STELLA_MAX_UPLOAD_BYTES); nothing stored`));
      hash.update(chunk);
      if (size <= keep) kept.push(chunk);
      cb(null, chunk);
    },
  });
  try {
    // flush: fsync before close (Node >= 20.10).
    await pipeline(input, meter, createWriteStream('', { fd: fh, flush: !!opts.sync }));
  } catch (e) {
    await fh.close().catch(() => {});
    await fsp.rm(path, { force: true });
    throw e;
  }
  return { path, digest: `sha256:${hash.digest('hex')}`, size, ...(size <= keep ? { data: Buffer.concat(kept) } : {}) };
}

/** A new private file in `dir`; the directory is made on first use (or again if it was removed since). */
async function openSpoolFile(dir: string, path: string): Promise<FileHandle> {
  if (spoolDirs.has(dir)) {
    try {
      return await fsp.open(path, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  await fsp.mkdir(dir, { recursive: true });
  spoolDirs.add(dir);
  return fsp.open(path, 'wx', 0o600);
}

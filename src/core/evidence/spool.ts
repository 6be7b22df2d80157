/** Upload spooling: a request body streamed to a private temp file, hashed and size-capped on the way. */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StellaError } from '../../lib/errors';

/**
 * Streams an upload to a private temp file while hashing it, refusing anything over
 * `maxBytes` as it arrives (never buffered whole). The caller removes the file.
 */
export async function spoolUpload(input: NodeJS.ReadableStream, dir: string, maxBytes: number): Promise<{ path: string; digest: string; size: number }> {
  await fsp.mkdir(dir, { recursive: true });
  const path = join(dir, `upload-${Date.now()}-${randomBytes(6).toString('hex')}.part`);
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      size += chunk.length;
      if (size > maxBytes) return cb(new StellaError('TOO_LARGE', `upload exceeds the limit of ${maxBytes} bytes (STELLA_MAX_UPLOAD_BYTES); nothing stored`));
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(input, meter, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  } catch (e) {
    await fsp.rm(path, { force: true });
    throw e;
  }
  return { path, digest: `sha256:${hash.digest('hex')}`, size };
}

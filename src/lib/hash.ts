/** SHA-256 helpers: digest strings, and the one way to hash a file or a stream. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `sha256:<hex>` digest string, the id form used for every evidence item. */
export function sha256Digest(data: string | Uint8Array): string {
  return `sha256:${sha256Hex(data)}`;
}

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Hashes a stream without buffering it; resolves with the digest and byte count. */
export async function sha256Stream(stream: Readable): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** `sha256:<hex>` of a file's content, streamed (never blocks the event loop on a large file). */
export async function sha256File(path: string): Promise<{ digest: string; size: number }> {
  return sha256Stream(createReadStream(path, { highWaterMark: 1 << 20 }));
}

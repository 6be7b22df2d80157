import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BlobError, DigestMismatchError } from './errors';

export function hexOf(digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new BlobError('MALFORMED_DIGEST', `malformed digest ${JSON.stringify(digest)}: expected sha256:<64 hex>`, 'BAD_INPUT', { digest });
  return m[1]!;
}

/**
 * Pass-through stream that hashes what flows through it and fails at the end (before the
 * consumer sees a clean 'end') when the content does not match the expected digest. The last
 * chunk is held back until the digest is checked, so a consumer of a damaged blob never gets
 * all of its bytes: an HTTP response with content-length stays visibly short.
 */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private held: Buffer | undefined;
  bytes = 0;
  constructor(private readonly expected: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    const previous = this.held;
    this.held = chunk;
    cb(null, previous);
  }
  override _flush(cb: TransformCallback): void {
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual === this.expected) cb(null, this.held);
    else cb(new DigestMismatchError(this.expected, actual));
  }
}

/** Blob-store errors: one LibraryError with the store's codes, mapped to StellaCodes at the boundary. */
import { LibraryError } from '../lib/errors';

export type BlobErrorCode = 'DIGEST_MISMATCH' | 'BLOB_NOT_FOUND' | 'MALFORMED_DIGEST';

export class BlobError extends LibraryError<BlobErrorCode> {}

/** Raised when stored bytes do not hash to the digest they are stored under. */
export class DigestMismatchError extends BlobError {
  constructor(
    public readonly expected: string,
    public readonly actual: string,
  ) {
    super('DIGEST_MISMATCH', `digest mismatch: expected ${expected}, content hashes to ${actual}`, 'INTEGRITY', { expected, actual });
  }
}

export class BlobNotFoundError extends BlobError {
  constructor(public readonly digest: string) {
    super('BLOB_NOT_FOUND', `blob not found: ${digest}`, 'NOT_FOUND', { digest });
  }
}

/**
 * Scanner errors: one LibraryError with the scanner's own codes; `category` says which stella
 * code (BAD_INPUT, INTEGRITY, FORBIDDEN, TOO_LARGE, NOT_FOUND) each means, so callers at the
 * API/CLI boundary can map them without knowing the scanner's internals.
 */
import { ArchiveError } from '../archive/errors';
import { LibraryError, type StellaCode } from '../lib/errors';

export type ScannerErrorCode = 'IMAGE_FORMAT' | 'DIGEST_MISMATCH' | 'TRUNCATED' | 'LAYER_UNSAFE' | 'LIMIT_EXCEEDED' | 'IMAGE_REF' | 'FEED';

export class ScannerError extends LibraryError<ScannerErrorCode> {}

/** The input is not a recognisable image (bad JSON, unknown layout, unsupported media type). */
export class ImageFormatError extends ScannerError {
  constructor(message: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super('IMAGE_FORMAT', message, 'BAD_INPUT', details, options);
  }
}

/** A blob's bytes do not hash to the digest (or size) its descriptor promises. */
export class DigestMismatchError extends ScannerError {
  constructor(
    public readonly what: string,
    public readonly expected: string,
    public readonly actual: string,
  ) {
    super('DIGEST_MISMATCH', `${what}: digest mismatch (expected ${expected}, got ${actual})`, 'INTEGRITY', { what, expected, actual });
  }
}

/** A tar (outer archive or layer) or gzip stream ends before its declared contents. */
export class TruncatedArchiveError extends ScannerError {
  constructor(what: string, detail?: string, options?: ErrorOptions) {
    super('TRUNCATED', `${what} is truncated${detail ? `: ${detail}` : ''}`, 'INTEGRITY', { what }, options);
  }
}

/** A layer entry tries to escape the image root (.., absolute path, link out of root, write through a symlink): bad input (exit 2), not an authorization failure. */
export class LayerSecurityError extends ScannerError {
  constructor(
    public readonly entry: string,
    public readonly reason: string,
    public readonly layer?: string,
  ) {
    super('LAYER_UNSAFE', `refusing layer entry ${JSON.stringify(entry)}${layer ? ` in ${layer}` : ''}: ${reason}`, 'BAD_INPUT', { entry, reason, layer });
  }
}

/** A configured bound (bytes per file, total bytes, entry count, feed size) was exceeded. */
export class ScanLimitError extends ScannerError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('LIMIT_EXCEEDED', message, 'TOO_LARGE', details);
  }
}

/** `ref`/platform did not select exactly one image: NOT_FOUND when nothing matched, BAD_INPUT when ambiguous. */
export class ImageRefError extends ScannerError {
  constructor(
    message: string,
    public readonly available: string[],
    category: Extract<StellaCode, 'NOT_FOUND' | 'BAD_INPUT'> = 'NOT_FOUND',
  ) {
    super('IMAGE_REF', message, category, { available });
  }
}

/** An advisory feed could not be read or holds a malformed record. */
export class FeedError extends ScannerError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('FEED', message, 'BAD_INPUT', details);
  }
}

const LIMIT_CODES = new Set(['too-many-entries', 'entry-too-large', 'total-too-large', 'decompressed-too-large']);

/** The scanner's reading of an error from the tar codec (src/archive): truncation, a limit, or not an image. */
export function fromArchiveError(e: unknown, label: string): unknown {
  if (!(e instanceof ArchiveError)) return e;
  if (e.code === 'truncated') return new TruncatedArchiveError(label, e.message, { cause: e });
  if (LIMIT_CODES.has(e.code)) return new ScanLimitError(`${label}: ${e.message}`, { limit: e.code });
  return new ImageFormatError(`${label}: not a valid tar stream (${e.message})`, undefined, { cause: e });
}

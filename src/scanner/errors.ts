/**
 * Scanner errors. Each carries a stable `code` using the same vocabulary as the rest of
 * stella (BAD_INPUT, INTEGRITY, FORBIDDEN, TOO_LARGE, NOT_FOUND) so callers at the API/CLI
 * boundary can map them without knowing the scanner's internals.
 */
export type ScannerErrorCode = 'BAD_INPUT' | 'INTEGRITY' | 'FORBIDDEN' | 'TOO_LARGE' | 'NOT_FOUND';

export class ScannerError extends Error {
  constructor(
    public readonly code: ScannerErrorCode,
    message: string,
    public readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input is not a recognisable image (bad JSON, unknown layout, unsupported media type). */
export class ImageFormatError extends ScannerError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_INPUT', message, details);
  }
}

/** A blob's bytes do not hash to the digest (or size) its descriptor promises. */
export class DigestMismatchError extends ScannerError {
  constructor(
    public readonly what: string,
    public readonly expected: string,
    public readonly actual: string,
  ) {
    super('INTEGRITY', `${what}: digest mismatch (expected ${expected}, got ${actual})`, { what, expected, actual });
  }
}

/** A tar (outer archive or layer) or gzip stream ends before its declared contents. */
export class TruncatedArchiveError extends ScannerError {
  constructor(what: string, detail?: string) {
    super('INTEGRITY', `${what} is truncated${detail ? `: ${detail}` : ''}`, { what });
  }
}

/** A layer entry tries to escape the image root (.., absolute path, link out of root, write through a symlink). */
export class LayerSecurityError extends ScannerError {
  constructor(
    public readonly entry: string,
    public readonly reason: string,
    public readonly layer?: string,
  ) {
    super('FORBIDDEN', `refusing layer entry ${JSON.stringify(entry)}${layer ? ` in ${layer}` : ''}: ${reason}`, { entry, reason, layer });
  }
}

/** A configured bound (bytes per file, total bytes, entry count, feed size) was exceeded. */
export class ScanLimitError extends ScannerError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('TOO_LARGE', message, details);
  }
}

/** `ref`/platform did not select exactly one image: NOT_FOUND when nothing matched, BAD_INPUT when ambiguous. */
export class ImageRefError extends ScannerError {
  constructor(
    message: string,
    public readonly available: string[],
    code: 'NOT_FOUND' | 'BAD_INPUT' = 'NOT_FOUND',
  ) {
    super(code, message, { available });
  }
}

/** An advisory feed could not be read or holds a malformed record. */
export class FeedError extends ScannerError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('BAD_INPUT', message, details);
  }
}

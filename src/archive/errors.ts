/**
 * Archive errors: one LibraryError with two families, so callers can tell "this archive is hostile
 * or over policy" (ArchiveSecurityError: refuse it, maybe alert) from "this archive is damaged"
 * (ArchiveFormatError: truncated download, bad checksum, corrupt compression). Both mean BAD_INPUT
 * at the boundary; content that hashes otherwise than its manifest says means INTEGRITY.
 */
import { LibraryError, type StellaCode } from '../lib/errors';

export type ArchiveSecurityCode =
  | 'unsafe-path' // absolute, `..`, backslash, NUL/control chars, empty or `.` components, too long
  | 'link-entry' // symlink or hardlink
  | 'special-entry' // device, fifo
  | 'unsupported-entry' // sparse, multi-volume, unknown type flags, path-changing global pax headers
  | 'duplicate-entry' // same path twice, or a path that is both a file and a directory
  | 'entry-too-large'
  | 'total-too-large'
  | 'too-many-entries'
  | 'decompressed-too-large'
  | 'trailing-data' // non-zero bytes after the end-of-archive marker (smuggling across tar implementations)
  | 'outside-destination' // extraction target resolves outside destDir, or through a symlink
  | 'exists'; // extraction target already exists (never overwritten)

export type ArchiveFormatCode =
  | 'truncated' // the input ends before the archive (or compressed stream) does
  | 'malformed'; // bad checksum, bad field, corrupt compression, not an archive

export type ArchiveCode =
  | ArchiveSecurityCode
  | ArchiveFormatCode
  | 'invalid-manifest' // a manifest handed to the writer breaks the manifest rules
  | 'hash-mismatch' // content does not hash to the digest the caller expected
  | 'wrong-kind' // a valid archive of another kind than the caller asked for
  | 'misuse'; // the API was called out of order (a bug in the caller, not in the archive)

export class ArchiveError extends LibraryError<ArchiveCode> {
  constructor(
    code: ArchiveCode,
    message: string,
    public readonly entry?: string,
    category: StellaCode = code === 'hash-mismatch' ? 'INTEGRITY' : 'BAD_INPUT',
    options?: ErrorOptions,
  ) {
    super(code, message, category, entry === undefined ? undefined : { entry }, options);
  }
}

/** The archive breaks a safety rule; `entry` names the offending entry when there is one. */
export class ArchiveSecurityError extends ArchiveError {
  declare readonly code: ArchiveSecurityCode;
  constructor(code: ArchiveSecurityCode, message: string, entry?: string) {
    super(code, entry === undefined ? message : `${message}: ${JSON.stringify(entry)}`, entry);
  }
}

/** The archive is malformed, truncated or not an archive at all. */
export class ArchiveFormatError extends ArchiveError {
  declare readonly code: ArchiveFormatCode;
  constructor(message: string, entry?: string, code: ArchiveFormatCode = 'malformed') {
    super(code, entry === undefined ? message : `${message}: ${JSON.stringify(entry)}`, entry);
  }
}

/**
 * Archive errors. Two families, so callers can tell "this archive is hostile or over policy"
 * (ArchiveSecurityError: refuse it, maybe alert) from "this archive is damaged" (ArchiveFormatError:
 * truncated download, bad checksum, corrupt compression).
 */

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

export class ArchiveError extends Error {
  constructor(
    message: string,
    public readonly entry?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The archive breaks a safety rule; `entry` names the offending entry when there is one. */
export class ArchiveSecurityError extends ArchiveError {
  constructor(
    public readonly code: ArchiveSecurityCode,
    message: string,
    entry?: string,
  ) {
    super(entry === undefined ? message : `${message}: ${JSON.stringify(entry)}`, entry);
  }
}

/** The archive is malformed, truncated or not an archive at all. */
export class ArchiveFormatError extends ArchiveError {
  constructor(message: string, entry?: string) {
    super(entry === undefined ? message : `${message}: ${JSON.stringify(entry)}`, entry);
  }
}

/**
 * One path policy for writing and reading: archive paths are relative, `/`-separated,
 * canonical (no empty, `.` or `..` components) and free of characters that mean something
 * else on some other platform or terminal. Applying the same rule on both sides means
 * anything we write we can read back, and anything we read is safe to join under a directory.
 */

export const MAX_PATH_BYTES = 4096;
export const MAX_COMPONENT_BYTES = 255;
/** Bounds the per-entry cost of tracking ancestor directories when reading. */
export const MAX_PATH_DEPTH = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `path` is not an acceptable archive path, or null when it is. `path` excludes any directory trailing slash. */
export function archivePathProblem(path: string): string | null {
  if (path.length === 0) return 'empty path';
  if (Buffer.byteLength(path, 'utf8') > MAX_PATH_BYTES) return `path longer than ${MAX_PATH_BYTES} bytes`;
  // Lone surrogates would be replaced on UTF-8 encoding, so two different strings could collide on disk.
  if (LONE_SURROGATE.test(path)) return 'path is not well-formed Unicode';
  // NUL truncates in C APIs; other controls (incl. DEL) enable log/terminal injection and have no legitimate use.
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'path contains a control character';
  // A backslash is a separator on Windows: `a\..\..\x` would traverse there.
  if (path.includes('\\')) return 'path contains a backslash';
  if (path.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(path)) return 'path starts with a drive letter';
  const parts = path.split('/');
  if (parts.length > MAX_PATH_DEPTH) return `path deeper than ${MAX_PATH_DEPTH} components`;
  for (const part of parts) {
    if (part === '') return 'path has an empty component';
    if (part === '.') return 'path has a "." component';
    if (part === '..') return 'path has a ".." component';
    if (Buffer.byteLength(part, 'utf8') > MAX_COMPONENT_BYTES) return `path component longer than ${MAX_COMPONENT_BYTES} bytes`;
  }
  return null;
}

/** Byte-order (UTF-8) comparison, the order entries are written in; JS `<` compares UTF-16 units and differs for astral characters. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Remembers which paths an archive has used, so one path never means two things: no
 * duplicates, no entry below a file, no file where entries below it already live.
 * Ancestors are recorded as implicit directories; walking stops at the first known ancestor,
 * so siblings cost O(1) each and memory stays proportional to the distinct directories.
 */
export class PathLedger {
  private readonly kinds = new Map<string, 'file' | 'directory' | 'implicit'>();

  /** Records `path`; returns why it conflicts with an earlier entry, or null. */
  add(path: string, type: 'file' | 'directory'): string | null {
    const existing = this.kinds.get(path);
    if (existing === 'file' || existing === 'directory') return 'duplicate entry';
    if (existing === 'implicit' && type === 'file') return 'file has the same path as a directory';
    for (let i = path.lastIndexOf('/'); i !== -1; i = path.lastIndexOf('/', i - 1)) {
      const dir = path.slice(0, i);
      const kind = this.kinds.get(dir);
      if (kind === 'file') return `entry is nested under file ${JSON.stringify(dir)}`;
      if (kind !== undefined) {
        // Known directory: its own ancestors were validated when it was recorded.
        break;
      }
      this.kinds.set(dir, 'implicit');
    }
    this.kinds.set(path, type);
    return null;
  }
}

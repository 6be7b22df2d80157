/**
 * Random-access index of an uncompressed tar file (`docker save`, OCI image archives): the
 * image's own JSON says which members are needed and in which order, often not archive order
 * (docker writes manifest.json last), so the headers are read once (bodies skipped by seeking)
 * and members are later read by offset. Built on the one tar parser (tar-read.ts).
 */
import { readTarFileEntries } from './tar-read';

export interface TarMember {
  /** Normalised name (see normaliseMemberName). */
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  /** Byte offset of the member's data within the archive. */
  offset: number;
  size: number;
  linkname?: string;
}

const DEFAULT_MAX_MEMBERS = 1_000_000;
const MAX_LINK_HOPS = 16;

/** Normalise an archive member name: strip "./" and trailing "/", collapse "." components. */
export function normaliseMemberName(name: string): string {
  return name
    .split('/')
    .filter((c) => c !== '' && c !== '.')
    .join('/');
}

const TYPES = { file: 'file', directory: 'dir', symlink: 'symlink', hardlink: 'hardlink', other: 'other' } as const;

export class TarIndex {
  private constructor(
    readonly path: string,
    readonly members: Map<string, TarMember>,
  ) {}

  /** Indexes `path`; throws ArchiveFormatError (truncated / malformed) or ArchiveSecurityError (too many members, trailing data). */
  static async open(path: string, opts: { maxMembers?: number } = {}): Promise<TarIndex> {
    const members = new Map<string, TarMember>();
    const limits = { maxEntries: opts.maxMembers ?? DEFAULT_MAX_MEMBERS, maxEntryBytes: Number.MAX_SAFE_INTEGER, maxTotalBytes: Number.MAX_SAFE_INTEGER };
    for await (const e of readTarFileEntries(path, limits)) {
      const name = normaliseMemberName(e.path);
      if (name === '') continue;
      const type = TYPES[e.type];
      members.set(name, {
        name,
        type,
        offset: e.offset,
        size: type === 'file' ? e.size : 0,
        ...(e.linkname && (type === 'symlink' || type === 'hardlink') ? { linkname: e.linkname } : {}),
      });
    }
    return new TarIndex(path, members);
  }

  /** Resolve a member by name, following symlinks / hard links inside the archive (bounded). */
  resolve(name: string): TarMember | undefined {
    let cur = this.members.get(normaliseMemberName(name));
    for (let hops = 0; cur && (cur.type === 'symlink' || cur.type === 'hardlink'); hops++) {
      if (hops > MAX_LINK_HOPS || !cur.linkname) return undefined;
      const target = cur.type === 'hardlink' || cur.linkname.startsWith('/') ? cur.linkname : `${cur.name.split('/').slice(0, -1).join('/')}/${cur.linkname}`;
      const parts: string[] = [];
      for (const c of target.split('/')) {
        if (c === '' || c === '.') continue;
        if (c === '..') {
          if (parts.length === 0) return undefined; // escapes the archive: treat as missing
          parts.pop();
        } else parts.push(c);
      }
      cur = this.members.get(parts.join('/'));
    }
    return cur;
  }
}

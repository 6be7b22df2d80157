import { open } from 'node:fs/promises';
import { ImageFormatError, ScanLimitError, TruncatedArchiveError } from './errors';

/**
 * Random-access index of an *outer* image tarball (`docker save`, OCI archive).
 * The image's own JSON tells us which members we need and in which order, and that
 * order is often not archive order (docker puts manifest.json last), so instead of
 * streaming we read the 512-byte headers once, remember where each member's data lives,
 * and later read members by offset. Layer tars *inside* the image are streamed instead.
 */
export interface TarMember {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';
  /** Byte offset of the member's data within the archive. */
  offset: number;
  size: number;
  linkname?: string;
}

const BLOCK = 512;
const MAX_META_BYTES = 1 << 20; // pax / GNU long-name payloads are tiny; refuse absurd ones
const DEFAULT_MAX_MEMBERS = 1_000_000;

function readString(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

function readNumber(buf: Buffer, start: number, len: number): number {
  // GNU base-256 encoding for sizes >= 8 GiB: high bit of the first byte set.
  if (buf[start]! & 0x80) {
    let v = buf[start]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[start + i]!;
    return v;
  }
  const s = readString(buf, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return Number.NaN;
  return parseInt(s, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = readNumber(header, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : header[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < buf.length) {
    const sp = buf.indexOf(0x20, i);
    if (sp === -1) break;
    const len = parseInt(buf.toString('ascii', i, sp), 10);
    if (!Number.isFinite(len) || len <= 0 || i + len > buf.length) break;
    const rec = buf.toString('utf8', sp + 1, i + len - 1); // drop trailing newline
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

/** Normalise an archive member name: strip "./" and trailing "/", collapse "." components. */
export function normaliseMemberName(name: string): string {
  return name
    .split('/')
    .filter((c) => c !== '' && c !== '.')
    .join('/');
}

export class TarIndex {
  private constructor(
    readonly path: string,
    readonly fileSize: number,
    readonly members: Map<string, TarMember>,
  ) {}

  static async open(path: string, opts: { maxMembers?: number } = {}): Promise<TarIndex> {
    const maxMembers = opts.maxMembers ?? DEFAULT_MAX_MEMBERS;
    const fh = await open(path, 'r');
    try {
      const { size: fileSize } = await fh.stat();
      const members = new Map<string, TarMember>();
      const header = Buffer.alloc(BLOCK);
      let pos = 0;
      let pax: Record<string, string> = {};
      let longName: string | undefined;
      let longLink: string | undefined;
      let sawEnd = false;

      const readExact = async (buf: Buffer, at: number, what: string) => {
        const { bytesRead } = await fh.read(buf, 0, buf.length, at);
        if (bytesRead !== buf.length) throw new TruncatedArchiveError(`image archive ${path}`, what);
      };

      while (pos < fileSize) {
        if (pos + BLOCK > fileSize) throw new TruncatedArchiveError(`image archive ${path}`, `partial header at offset ${pos}`);
        await readExact(header, pos, `header at offset ${pos}`);
        if (header.every((b) => b === 0)) {
          sawEnd = true;
          break;
        }
        if (!checksumOk(header)) throw new ImageFormatError(`image archive ${path}: bad tar header checksum at offset ${pos} (not a tar, or corrupted)`);
        const typeflag = String.fromCharCode(header[156]!);
        let size = readNumber(header, 124, 12);
        if (!Number.isFinite(size) || size < 0) throw new ImageFormatError(`image archive ${path}: bad size field at offset ${pos}`);
        if (pax.size !== undefined) {
          size = /^\d+$/.test(pax.size) ? Number(pax.size) : Number.NaN;
          if (!Number.isSafeInteger(size)) throw new ImageFormatError(`image archive ${path}: bad pax size at offset ${pos}`);
        }
        const dataOffset = pos + BLOCK;
        if (dataOffset + size > fileSize)
          throw new TruncatedArchiveError(`image archive ${path}`, `member at offset ${pos} needs ${size} bytes, archive ends first`);
        const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;

        if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
          if (size > MAX_META_BYTES) throw new ImageFormatError(`image archive ${path}: oversized metadata header at offset ${pos}`);
          const meta = Buffer.alloc(size);
          await readExact(meta, dataOffset, `metadata at offset ${pos}`);
          if (typeflag === 'x') pax = parsePax(meta);
          else if (typeflag === 'L') longName = readString(meta, 0, meta.length);
          else if (typeflag === 'K') longLink = readString(meta, 0, meta.length);
          // 'g' (global pax) carries nothing we need.
          pos = next;
          continue;
        }

        let name = longName ?? pax.path;
        if (name === undefined) {
          name = readString(header, 0, 100);
          const magic = header.toString('ascii', 257, 263);
          // POSIX ustar keeps a path prefix at 345; GNU ("ustar  ") uses that space for times.
          const prefix = magic === 'ustar\u0000' ? readString(header, 345, 155) : '';
          if (prefix) name = `${prefix}/${name}`;
        }
        const linkname = longLink ?? pax.linkpath ?? readString(header, 157, 100);
        pax = {};
        longName = undefined;
        longLink = undefined;

        const type: TarMember['type'] =
          typeflag === '0' || typeflag === '\0' || typeflag === '7'
            ? name.endsWith('/')
              ? 'dir'
              : 'file'
            : typeflag === '5'
              ? 'dir'
              : typeflag === '2'
                ? 'symlink'
                : typeflag === '1'
                  ? 'hardlink'
                  : 'other';
        const norm = normaliseMemberName(name);
        if (norm !== '') {
          members.set(norm, {
            name: norm,
            type,
            offset: dataOffset,
            size: type === 'file' ? size : 0,
            ...(linkname && (type === 'symlink' || type === 'hardlink') ? { linkname } : {}),
          });
          if (members.size > maxMembers) throw new ScanLimitError(`image archive ${path} has more than ${maxMembers} members`);
        }
        pos = next;
      }
      // Writers always emit the zero-block end marker; a file that simply stops at a member
      // boundary has most likely lost members.
      if (!sawEnd) throw new TruncatedArchiveError(`image archive ${path}`, 'no end-of-archive marker');
      return new TarIndex(path, fileSize, members);
    } finally {
      await fh.close();
    }
  }

  /** Resolve a member by name, following symlinks / hard links inside the archive (bounded). */
  resolve(name: string): TarMember | undefined {
    let cur = this.members.get(normaliseMemberName(name));
    for (let hops = 0; cur && (cur.type === 'symlink' || cur.type === 'hardlink'); hops++) {
      if (hops > 16 || !cur.linkname) return undefined;
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

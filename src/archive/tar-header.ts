/** Tar header, pax and GNU long-name parsing shared by the streaming reader and the random-access index. */
import { ArchiveFormatError, ArchiveSecurityError } from './errors';

export const BLOCK = 512;
/** Largest pax / GNU long-name header body we accept; real ones are a few KiB. */
export const MAX_META_BYTES = 1024 * 1024;

export interface RawHeader {
  name: Buffer; // raw bytes; decoded only once we know which name applies
  prefix: Buffer | null;
  linkname: Buffer;
  typeflag: string;
  size: number;
  mode: number;
  mtime: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Lenient = new TextDecoder('utf-8');

export const cstr = (b: Buffer, off: number, len: number): Buffer => {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return nul === -1 ? f : f.subarray(0, nul);
};

/** ustar numeric field: octal digits padded with spaces/NULs, or GNU base-256 (positive only). */
function parseNumeric(b: Buffer, off: number, len: number): number | null {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    if (f[0] !== 0x80) return null; // negative (0xff) or malformed
    let v = 0;
    for (let i = 1; i < len; i++) {
      if (v > (Number.MAX_SAFE_INTEGER - 255) / 256) return Number.POSITIVE_INFINITY;
      v = v * 256 + f[i]!;
    }
    return v;
  }
  let i = 0;
  while (i < len && f[i] === 0x20) i++;
  let v = 0;
  while (i < len && f[i]! >= 0x30 && f[i]! <= 0x37) v = v * 8 + (f[i++]! - 0x30);
  while (i < len && (f[i] === 0 || f[i] === 0x20)) i++;
  return i === len ? v : null;
}

/** Parses one header block; `allowV7` also accepts pre-POSIX headers (no magic; the checksum is still verified). */
export function parseHeader(b: Buffer, position: number, allowV7 = false): RawHeader {
  const stored = parseNumeric(b, 148, 8);
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    unsigned += b[i]!;
    signed += (b[i]! << 24) >> 24; // some historic writers summed signed chars
  }
  if (stored === null || (stored !== unsigned && stored !== signed)) {
    throw new ArchiveFormatError(`bad tar header checksum at offset ${position} (corrupt, truncated or not a tar)`);
  }
  const magic = b.toString('latin1', 257, 265);
  const ustar = magic.startsWith('ustar\0');
  if (!ustar && magic !== 'ustar  \0' && !allowV7) throw new ArchiveFormatError(`unsupported tar header format at offset ${position} (pre-POSIX v7 tar?)`);
  const size = parseNumeric(b, 124, 12);
  if (size === null) throw new ArchiveFormatError(`invalid size field in tar header at offset ${position}`);
  const prefix = ustar ? cstr(b, 345, 155) : null;
  return {
    name: cstr(b, 0, 100),
    prefix: prefix && prefix.length > 0 ? prefix : null,
    linkname: cstr(b, 157, 100),
    typeflag: b[156] === 0 ? '0' : String.fromCharCode(b[156]!),
    size,
    mode: (parseNumeric(b, 100, 8) ?? 0) & 0o7777,
    mtime: finiteOr0(parseNumeric(b, 136, 12)),
  };
}

const finiteOr0 = (n: number | null) => (n !== null && Number.isFinite(n) ? n : 0);

export const printable = (b: Buffer) => b.toString('latin1').replace(/[^\x20-\x7e]/g, '?');

/** UTF-8 name; invalid bytes are refused, or replaced with U+FFFD when `lenient` (names we only model, never write). */
export function decodeName(bytes: Buffer, lenient = false): string {
  if (lenient) return utf8Lenient.decode(bytes);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ArchiveSecurityError('unsafe-path', 'path is not valid UTF-8', printable(bytes));
  }
}

/** Strict pax parser: "<len> <key>=<value>\n" records that exactly tile the body. */
export function parsePax(buf: Buffer, position: number): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const bad = () => new ArchiveFormatError(`malformed pax header at offset ${position}`);
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(0x20, pos);
    if (sp === -1 || sp - pos > 10) throw bad();
    const lenStr = buf.toString('latin1', pos, sp);
    if (!/^[1-9][0-9]*$/.test(lenStr)) throw bad();
    const end = pos + Number(lenStr);
    if (end > buf.length || end <= sp + 1 || buf[end - 1] !== 0x0a) throw bad();
    const rec = buf.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw bad();
    const key = rec.toString('latin1', 0, eq);
    // Repeated keys let two readers pick different values; nothing legitimate repeats them.
    if (out.has(key)) throw bad();
    out.set(key, rec.subarray(eq + 1));
    pos = end;
  }
  return out;
}

/** Keys that change which bytes belong to an entry or how they are laid out; we refuse rather than guess. */
export function unsupportedPaxKey(keys: Iterable<string>): string | undefined {
  for (const k of keys) if (k.startsWith('GNU.sparse.') || k === 'hdrcharset') return k;
  return undefined;
}

export const pad = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

export function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

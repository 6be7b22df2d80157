/**
 * C2SP tlog-tiles arithmetic: tile paths, which tree nodes a tile holds, and entry bundles.
 * A tile at level L, index N holds the hashes of the perfect subtrees of 256^L leaves with
 * indices N·256 … N·256+W−1 (W = 256 for a full tile, 1…255 for a partial one); level-0
 * tiles hold leaf hashes. Pure: the server reads the hashes, this module names them.
 */
import { MerkleError } from './errors';

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;

export interface TileRef {
  /** 'hash' for /tile/<L>/..., 'entries' for /tile/entries/... */
  kind: 'hash' | 'entries';
  level: number;
  index: number;
  /** 256 for a full tile, otherwise the partial width. */
  width: number;
}

const bad = (m: string): never => {
  throw new MerkleError('BAD_SIZE', m);
};

/** N as path segments: groups of three digits, all but the last prefixed with "x" (1234067 → x001/x234/067). */
export function encodeTileIndex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) bad(`tile index ${n} is not a non-negative integer`);
  const groups: string[] = [];
  let rest = n;
  do {
    groups.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

/** The path of a tile below the log prefix, e.g. tile/0/x001/234.p/7 or tile/entries/000. */
export function tilePath(t: TileRef): string {
  const head = t.kind === 'entries' ? 'tile/entries' : `tile/${t.level}`;
  return `${head}/${encodeTileIndex(t.index)}${t.width < TILE_WIDTH ? `.p/${t.width}` : ''}`;
}

/** Parse what follows `tile/` (e.g. "0/x001/234.p/7", "entries/000"); throws on anything not canonical. */
export function parseTilePath(rest: string): TileRef {
  const segs = rest.split('/');
  const first = segs.shift();
  let kind: TileRef['kind'] = 'hash';
  let level = 0;
  if (first === 'entries') kind = 'entries';
  else if (first !== undefined && /^(0|[1-9][0-9]?)$/.test(first) && Number(first) <= 63) level = Number(first);
  else bad(`tile level ${JSON.stringify(first)} is not 0-63 or "entries"`);
  let width = TILE_WIDTH;
  if (segs.length >= 2 && segs[segs.length - 2]!.endsWith('.p')) {
    const w = segs.pop()!;
    if (!/^[1-9][0-9]{0,2}$/.test(w) || Number(w) >= TILE_WIDTH) bad(`partial tile width ${JSON.stringify(w)} is not 1-255`);
    width = Number(w);
    segs[segs.length - 1] = segs[segs.length - 1]!.slice(0, -2);
  }
  if (segs.length === 0 || segs.length > 6) bad('tile index is missing or too long');
  let index = 0;
  segs.forEach((s, i) => {
    const last = i === segs.length - 1;
    if (!(last ? /^[0-9]{3}$/ : /^x[0-9]{3}$/).test(s)) bad(`tile index segment ${JSON.stringify(s)} is not ${last ? 'NNN' : 'xNNN'}`);
    index = index * 1000 + Number(last ? s : s.slice(1));
  });
  if (segs.length > 1 && segs[0] === 'x000') bad('tile index has a leading zero group');
  return { kind, level, index, width };
}

/** Nodes at tile level L in a tree of `size` leaves: complete subtrees of 256^L leaves. */
export function nodesAtTileLevel(size: number, level: number): number {
  return Math.floor(size / TILE_WIDTH ** level);
}

/**
 * Whether the tile exists for a tree of `size` leaves: a full tile once all its 256 nodes are
 * complete; a partial tile of width W once that level has N·256+W nodes. Partials of a tile that
 * has since filled stay servable (their hashes never change), so a client holding an older
 * checkpoint can still fetch the exact widths it asks for.
 */
export function tileWithin(t: TileRef, size: number): boolean {
  const count = nodesAtTileLevel(size, t.kind === 'entries' ? 0 : t.level);
  return t.index * TILE_WIDTH + t.width <= count;
}

/** The tree level (in hashes, not tiles) and node indices a hash tile holds. */
export function tileNodes(t: TileRef): { treeLevel: number; start: number; count: number } {
  return { treeLevel: t.level * TILE_HEIGHT, start: t.index * TILE_WIDTH, count: t.width };
}

/** An entry bundle: each entry as a big-endian uint16 length followed by its bytes. */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.length > 0xffff) bad(`an entry of ${e.length} bytes does not fit a tlog-tiles entry bundle`);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(e.length);
    parts.push(len, Buffer.from(e));
  }
  return Buffer.concat(parts);
}

export function decodeEntryBundle(buf: Uint8Array): Buffer[] {
  const b = Buffer.from(buf);
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; ) {
    if (i + 2 > b.length) bad('entry bundle ends inside a length prefix');
    const n = b.readUInt16BE(i);
    if (i + 2 + n > b.length) bad('entry bundle ends inside an entry');
    out.push(b.subarray(i + 2, i + 2 + n));
    i += 2 + n;
  }
  return out;
}

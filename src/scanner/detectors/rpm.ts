/**
 * RPM databases: SQLite `rpmdb.sqlite` (read with sql.js, SQLite compiled to wasm), NDB
 * `Packages.db` and Berkeley DB `Packages`. All three store the same header blobs, parsed
 * here (the blob format is rpm's own; no maintained JS parser exists). Distro from os-release.
 */
import initSqlJs from 'sql.js';
import { buildPurl } from '../purl';
import { spdxLicenses } from './licenses';
import { distroQualifier, type DetectContext, type Package } from './types';

export const RPMDB_PATHS = [
  '/var/lib/rpm/rpmdb.sqlite',
  '/usr/lib/sysimage/rpm/rpmdb.sqlite',
  '/var/lib/rpm/Packages.db',
  '/usr/lib/sysimage/rpm/Packages.db',
  '/var/lib/rpm/Packages',
  '/usr/lib/sysimage/rpm/Packages',
];

const TAG = {
  name: 1000,
  version: 1001,
  release: 1002,
  epoch: 1003,
  license: 1014,
  vendor: 1011,
  arch: 1022,
  sourceRpm: 1044,
  dirIndexes: 1116,
  baseNames: 1117,
  dirNames: 1118,
};
const TYPE = { int32: 4, string: 6, stringArray: 8, i18n: 9 };

export interface RpmHeader {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  arch?: string;
  license?: string;
  vendor?: string;
  sourceRpm?: string;
  files: string[];
}

/** One header blob (as rpmdb stores it: index count, data length, index entries, data store). */
export function parseRpmHeader(blob: Uint8Array): RpmHeader | undefined {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (b.length < 8) return undefined;
  const il = b.readUInt32BE(0);
  const dl = b.readUInt32BE(4);
  const store = 8 + il * 16;
  if (il > 100_000 || store + dl > b.length) return undefined;
  const values = new Map<number, string[] | number[]>();
  for (let i = 0; i < il; i++) {
    const e = 8 + i * 16;
    const tag = b.readUInt32BE(e);
    const type = b.readUInt32BE(e + 4);
    const off = b.readUInt32BE(e + 8);
    const count = b.readUInt32BE(e + 12);
    if (off >= dl) continue;
    if (type === TYPE.int32) {
      const nums: number[] = [];
      for (let k = 0; k < count && store + off + 4 * k + 4 <= store + dl; k++) nums.push(b.readUInt32BE(store + off + 4 * k));
      values.set(tag, nums);
    } else if (type === TYPE.string || type === TYPE.stringArray || type === TYPE.i18n) {
      const strs: string[] = [];
      let p = store + off;
      for (let k = 0; k < (type === TYPE.string ? 1 : count) && p < store + dl; k++) {
        const end = b.indexOf(0, p);
        if (end === -1 || end > store + dl) break;
        strs.push(b.toString('utf8', p, end));
        p = end + 1;
      }
      values.set(tag, strs);
    }
  }
  const str = (t: number) => (values.get(t) as string[] | undefined)?.[0];
  const name = str(TAG.name);
  const version = str(TAG.version);
  if (!name || !version) return undefined;
  const epoch = (values.get(TAG.epoch) as number[] | undefined)?.[0];
  const dirs = (values.get(TAG.dirNames) as string[] | undefined) ?? [];
  const idx = (values.get(TAG.dirIndexes) as number[] | undefined) ?? [];
  const bases = (values.get(TAG.baseNames) as string[] | undefined) ?? [];
  const opt = (k: keyof RpmHeader, v: string | number | undefined) => (v !== undefined && v !== '' ? { [k]: v } : {});
  return {
    name,
    version,
    release: str(TAG.release) ?? '',
    ...opt('epoch', epoch),
    ...opt('arch', str(TAG.arch)),
    ...opt('license', str(TAG.license)),
    ...opt('vendor', str(TAG.vendor)),
    ...opt('sourceRpm', str(TAG.sourceRpm)),
    files: bases.map((base, i) => `${dirs[idx[i] ?? -1] ?? ''}${base}`),
  };
}

let sql: ReturnType<typeof initSqlJs> | undefined;

async function sqliteBlobs(db: Buffer): Promise<Uint8Array[]> {
  sql ??= initSqlJs();
  const d = new (await sql).Database(db);
  try {
    const res = d.exec('SELECT blob FROM Packages ORDER BY hnum');
    return (res[0]?.values ?? []).map((row) => row[0]).filter((v): v is Uint8Array => v instanceof Uint8Array);
  } finally {
    d.close();
  }
}

const NDB_MAGIC = 0x506d7052; // "RpmP"
const SLOT_MAGIC = 0x746f6c53; // "Slot"
const BLOB_MAGIC = 0x53626c42; // "BlbS"

/** NDB (rpm >= 4.16 "ndb" backend, SUSE): slot pages point at 16-byte-aligned blobs. */
export function ndbBlobs(db: Buffer): Uint8Array[] {
  if (db.length < 32 || db.readUInt32LE(0) !== NDB_MAGIC) throw new Error('not an NDB Packages.db');
  const slotPages = db.readUInt32LE(12);
  const out: Uint8Array[] = [];
  for (let off = 32; off + 16 <= Math.min(slotPages * 4096, db.length); off += 16) {
    if (db.readUInt32LE(off) !== SLOT_MAGIC) continue;
    const pkgIdx = db.readUInt32LE(off + 4);
    const blk = db.readUInt32LE(off + 8) * 16;
    if (pkgIdx === 0 || blk + 16 > db.length || db.readUInt32LE(blk) !== BLOB_MAGIC) continue;
    const len = db.readUInt32LE(blk + 12);
    if (blk + 16 + len <= db.length) out.push(db.subarray(blk + 16, blk + 16 + len));
  }
  return out;
}

/**
 * Berkeley DB hash `Packages` (RHEL <= 8, CentOS 7, Amazon Linux 2): the data items of hash
 * pages, following overflow-page chains (every header blob is larger than a page item).
 */
export function bdbBlobs(db: Buffer): Uint8Array[] {
  const HASH_MAGIC = 0x061561;
  let le = true;
  if (db.length < 512) throw new Error('not a Berkeley DB file');
  if (db.readUInt32LE(12) !== HASH_MAGIC) {
    if (db.readUInt32BE(12) !== HASH_MAGIC) throw new Error('not a Berkeley DB hash database');
    le = false;
  }
  const u16 = (o: number) => (le ? db.readUInt16LE(o) : db.readUInt16BE(o));
  const u32 = (o: number) => (le ? db.readUInt32LE(o) : db.readUInt32BE(o));
  const pageSize = u32(20);
  if (pageSize < 512 || pageSize > 65536) throw new Error('Berkeley DB: bad page size');
  const pages = Math.floor(db.length / pageSize);
  const P_HASH_UNSORTED = 2;
  const P_HASH = 13;
  const H_OFFPAGE = 3;
  const out: Uint8Array[] = [];
  for (let pg = 1; pg < pages; pg++) {
    const base = pg * pageSize;
    const type = db[base + 25];
    if (type !== P_HASH && type !== P_HASH_UNSORTED) continue;
    const entries = u16(base + 20);
    // Items alternate key, data; only data items that live on overflow pages hold headers.
    for (let i = 1; i < entries; i += 2) {
      const item = base + u16(base + 26 + 2 * i);
      if (item + 12 > db.length || db[item] !== H_OFFPAGE) continue;
      const blob = overflow(db, u32(item + 4), u32(item + 8), pageSize, u16, u32);
      if (blob) out.push(blob);
    }
  }
  return out;
}

function overflow(db: Buffer, first: number, total: number, pageSize: number, u16: (o: number) => number, u32: (o: number) => number): Buffer | undefined {
  const parts: Buffer[] = [];
  let got = 0;
  let pg = first;
  for (let hops = 0; pg !== 0 && got < total && hops < 1_000_000; hops++) {
    const base = pg * pageSize;
    if (base + pageSize > db.length) return undefined;
    const len = u16(base + 22);
    parts.push(db.subarray(base + 26, base + 26 + len));
    got += len;
    pg = u32(base + 16);
  }
  return got >= total ? Buffer.concat(parts).subarray(0, total) : undefined;
}

/** Every header in an rpmdb file, whatever its backend (chosen by file name). */
export async function readRpmdb(path: string, db: Buffer): Promise<RpmHeader[]> {
  const blobs = path.endsWith('.sqlite') ? await sqliteBlobs(db) : path.endsWith('.db') ? ndbBlobs(db) : bdbBlobs(db);
  return blobs.map(parseRpmHeader).filter((h): h is RpmHeader => h !== undefined);
}

/** purl namespace per distro (syft/trivy conventions): redhat for RHEL and UBI, else the os-release ID. */
function namespaceOf(ctx: Pick<DetectContext, 'distro'>): string {
  const id = ctx.distro?.id;
  if (!id) return 'redhat';
  if (id === 'rhel') return 'redhat';
  if (id === 'amzn') return 'amazon';
  if (id.startsWith('opensuse') || id === 'sles' || id === 'sle-micro') return 'opensuse';
  return id;
}

export function rpmPackages(headers: RpmHeader[], location: string, ctx: Pick<DetectContext, 'distro'>): Package[] {
  const namespace = namespaceOf(ctx);
  return headers
    .filter((h) => h.name !== 'gpg-pubkey') // imported signing keys, not software
    .map((h) => {
      const version = h.release ? `${h.version}-${h.release}` : h.version;
      const full = h.epoch !== undefined ? `${h.epoch}:${version}` : version;
      const src = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(h.sourceRpm ?? '');
      const licenses = h.license ? spdxLicenses(h.license) : undefined;
      return {
        ecosystem: 'rpm' as const,
        name: h.name,
        version: full,
        purl: buildPurl({
          type: 'rpm',
          namespace,
          name: h.name,
          version,
          qualifiers: { arch: h.arch, epoch: h.epoch !== undefined ? String(h.epoch) : undefined, distro: distroQualifier(ctx.distro) },
        }),
        locations: [location],
        ...(h.arch ? { arch: h.arch } : {}),
        ...(licenses?.length ? { licenses } : {}),
        ...(src ? { source: { name: src[1]!, version: `${src[2]}-${src[3]}` } } : {}),
        cpes: [`cpe:2.3:a:${namespace}:${h.name}:${h.version}:*:*:*:*:*:*:*`],
      };
    });
}

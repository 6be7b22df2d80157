/**
 * Evidence Locker backups. A backup is a directory `<backups>/<backup-id>/`:
 *
 *   index/<table>.jsonl      logical export of every table, one snapshot (index-io.ts)
 *   index/schema.json        tables, columns, row counts, batch offsets, migrations applied
 *   blobs.jsonl              every blob the snapshot references: {digest, size, key, location}
 *   blobs/sha256/xx/yy/<hex> the blob bytes (FsBlobStore layout, so the folder is itself a store)
 *   anchors/chain.jsonl      the anchor chain (compact JWS, chain/seq order)
 *   keys/rootpack.json       the signing PUBLIC keys (RootPack; never private material)
 *   manifest.json            stella.archive-manifest/v1, kind evidence-locker-backup: sha256 + size of every file
 *   manifest.sha256          digest of manifest.json
 *   backup.json              summary for `stella backup list` (status, time, size, items, latest anchor)
 *
 * It lives beside the database, not in it, so `backup list` and restore work after the
 * database is gone.
 */
import { createWriteStream, existsSync, promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { AppContext } from '../context';
import { FsBlobStore, type BlobStore } from '../../blob';
import { buildManifest, serializeManifest, parseManifest, type ArchiveManifest, type ManifestEntry } from '../../archive';
import { exportRootPack, loadRootPack, type RootPack } from '../../crypto/rootpack';
import type { DbClient } from '../../db/pool';
import { sha256Digest, sha256File } from '../../lib/hash';
import { mapLimit } from '../../lib/concurrency';
import { audit } from '../audit';
import { badInput, integrity, notFound } from '../../lib/errors';
import { exportIndex, readLinesAt, type IndexExport } from '../../db/dump';
import { anchorChainRows, anchorsTableExists } from '../anchoring/queries/backup';
import { blobsToBackUp, countAllItems, evidenceLogSize } from '../evidence/queries/backup';
import { recordBackupFailed, recordBackupStart, recordBackupSucceeded } from './runs';

export const BACKUP_KIND = 'evidence-locker-backup';
/**
 * Tables the index export leaves out: bookkeeping of a restore in progress (not locker state)
 * and schema_migrations (the restoring build applies its own; the export records which ran).
 */
export const NOT_EXPORTED: ReadonlySet<string> = new Set(['schema_migrations', 'restore_batches']);
export const BLOB_BATCH = 500;
/** Blob copies in flight per batch. */
export const COPY_CONCURRENCY = 16;

export interface BackupInput {
  backupId: string;
  dir: string;
  actor: string;
}

export type BackupSummary = {
  id: string;
  type: 'evidence-locker';
  /** incomplete: on S3 without a manifest (an interrupted upload). */
  status: 'running' | 'complete' | 'failed' | 'incomplete';
  createdAt: string;
  finishedAt?: string | null;
  location: string;
  sizeBytes: number;
  items: number;
  blobs: number;
  blobBytes: number;
  logSize: number;
  latestAnchor: { id: string; seq: number; logSize: number; rootHash: string; createdAt: string } | null;
  manifestSha256?: string | null;
  problems?: { id: string; problem: string }[];
};

export interface BackupSchema extends IndexExport {
  backupId: string;
  itemCount: number;
  logSize: number;
  blobCount: number;
  blobBytes: number;
  blobBatchOffsets: number[];
  latestAnchor: BackupSummary['latestAnchor'];
  anchors: { id: string; chainId: string; seq: number; logSize: number; rootHash: string }[];
  source: { blobKind: string; blobLocation: string };
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function newBackupId(now = new Date()): string {
  return `bk-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(3).toString('hex')}`;
}

export function validateBackupId(id: string): string {
  if (!ID_RE.test(id)) throw badInput(`malformed backup id ${JSON.stringify(id)}`);
  return id;
}

export const isS3Location = (d?: string | null): boolean => !!d && /^s3:\/\//i.test(d);

/** The local root of a backup location; an s3:// location is built in `<dataDir>/tmp/backup-staging` (s3.ts uploads it). */
export function backupRoot(ctx: AppContext, dir?: string | null): string {
  const d = dir || ctx.cfg.backup.dir;
  if (isS3Location(d)) return join(ctx.cfg.dataDir, 'tmp', 'backup-staging');
  return resolve(d);
}

export function backupPath(root: string, id: string): string {
  return join(root, validateBackupId(id));
}

export const backupBlobStore = (path: string) => new FsBlobStore(join(path, 'blobs'));

async function writeJson(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await fsp.rename(tmp, file);
}

async function hashFile(file: string): Promise<{ sha256: string; size: number }> {
  const { digest, size } = await sha256File(file);
  return { sha256: digest, size };
}

export async function readSchema(path: string): Promise<BackupSchema> {
  try {
    return JSON.parse(await fsp.readFile(join(path, 'index', 'schema.json'), 'utf8')) as BackupSchema;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`backup at ${path} has no index/schema.json (incomplete backup?)`);
    throw e;
  }
}

export async function readSummary(path: string): Promise<BackupSummary | null> {
  try {
    return JSON.parse(await fsp.readFile(join(path, 'backup.json'), 'utf8')) as BackupSummary;
  } catch {
    return null;
  }
}

/**
 * Step 1 (one activity): the index in one snapshot, and in that same snapshot the list of
 * blobs to copy, the anchor chain and the log size; plus the public keys. Re-running it
 * starts over (a new snapshot), unless the backup is already complete.
 */
export async function backupExport(ctx: AppContext, input: BackupInput, hb: (detail: unknown) => void): Promise<BackupSchema> {
  const path = backupPath(backupRoot(ctx, input.dir), input.backupId);
  if (existsSync(join(path, 'manifest.json'))) return readSchema(path);
  await fsp.rm(join(path, 'index'), { recursive: true, force: true });
  await fsp.mkdir(join(path, 'anchors'), { recursive: true });
  await fsp.mkdir(join(path, 'keys'), { recursive: true });
  await writeJson(join(path, 'backup.json'), {
    id: input.backupId,
    type: 'evidence-locker',
    status: 'running',
    createdAt: new Date().toISOString(),
    location: path,
    sizeBytes: 0,
    items: 0,
    blobs: 0,
    blobBytes: 0,
    logSize: 0,
    latestAnchor: null,
  } satisfies BackupSummary);
  await recordBackupStart(ctx.db, { id: input.backupId, location: path, actor: input.actor, workflowId: input.backupId });

  const ex = await exportIndex(ctx.db, join(path, 'index'), {
    exclude: NOT_EXPORTED,
    onRows: (table, rows) => hb({ table, rows }),
    extra: (client) => snapshotExtras(ctx, path, client),
  });

  const rootpack = await exportRootPack(ctx.keys);
  // Belt and braces: a RootPack is public by construction; refuse to write one that is not.
  if (JSON.stringify(rootpack).includes('"d":')) throw integrity('refusing to write a RootPack containing private key material');
  await writeJson(join(path, 'keys', 'rootpack.json'), rootpack);

  const { extra, ...index } = ex;
  const schema: BackupSchema = {
    ...index,
    backupId: input.backupId,
    itemCount: extra.items,
    logSize: extra.logSize,
    blobCount: extra.blobCount,
    blobBytes: extra.blobBytes,
    blobBatchOffsets: extra.blobBatchOffsets,
    latestAnchor: extra.latest,
    anchors: extra.anchors,
    source: { blobKind: ctx.blobs.primary.kind, blobLocation: ctx.blobs.primary.location },
  };
  await writeJson(join(path, 'index', 'schema.json'), schema);
  return schema;
}

interface SnapshotExtras {
  blobCount: number;
  blobBytes: number;
  blobBatchOffsets: number[];
  items: number;
  logSize: number;
  anchors: BackupSchema['anchors'];
  latest: BackupSchema['latestAnchor'];
}

/**
 * Inside the export's snapshot: blobs.jsonl (the blobs of every item whose bytes should exist;
 * purged items have none, corrupted ones have bad bytes and are left out), the item count, the
 * log size and the anchor chain, so they agree with the exported rows.
 */
async function snapshotExtras(ctx: AppContext, path: string, client: DbClient): Promise<SnapshotExtras> {
  const out = createWriteStream(join(path, 'blobs.jsonl'));
  const offsets: number[] = [];
  let bytes = 0;
  let blobBytes = 0;
  let n = 0;
  for (const b of await blobsToBackUp(client)) {
    if (!b.good) continue;
    if (n % BLOB_BATCH === 0) offsets.push(bytes);
    const line = Buffer.from(`${JSON.stringify({ digest: b.id, size: b.size, key: b.key ?? b.id, location: ctx.blobs.primary.location })}\n`);
    out.write(line);
    bytes += line.length;
    blobBytes += b.size;
    n++;
  }
  out.end();
  await new Promise<void>((res, rej) => out.once('finish', res).once('error', rej));
  const items = await countAllItems(client);
  const logSize = await evidenceLogSize(client);
  const chain = (await anchorsTableExists(client)) ? await anchorChainRows(client) : [];
  await fsp.writeFile(
    join(path, 'anchors', 'chain.jsonl'),
    chain.map((r) => `${JSON.stringify({ id: r.id, chainId: r.chainId, seq: r.seq, status: r.status, jws: r.jws })}\n`).join(''),
  );
  const anchors = chain.map((r) => ({ id: r.id, chainId: r.chainId, seq: r.seq, logSize: r.logSize, rootHash: r.rootHash }));
  const live = chain.filter((r) => r.status !== 'archived').sort((x, y) => y.logSize - x.logSize || +y.createdAt - +x.createdAt)[0];
  const latest = live ? { id: live.id, seq: live.seq, logSize: live.logSize, rootHash: live.rootHash, createdAt: live.createdAt.toISOString() } : null;
  return { blobCount: n, blobBytes, blobBatchOffsets: offsets, items, logSize, anchors, latest };
}

export async function readBlobBatch(path: string, schema: BackupSchema, batchNo: number): Promise<{ digest: string; size: number; key: string }[]> {
  const off = schema.blobBatchOffsets[batchNo];
  if (off === undefined) return [];
  return (await readLinesAt(join(path, 'blobs.jsonl'), off, BLOB_BATCH)).map((l) => JSON.parse(l));
}

/** Copies one blob into a filesystem store, verified against its digest on the way in. */
export async function copyBlobInto(src: BlobStore, dest: FsBlobStore, digest: string, tmpDir: string): Promise<{ copied: boolean; size: number }> {
  const st = await dest.stat(digest);
  if (st) return { copied: false, size: st.size };
  if (src instanceof FsBlobStore) {
    const r = await dest.putFile(digest, src.pathFor(digest));
    return { copied: r.created, size: r.size };
  }
  await fsp.mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, `${digest.slice(7)}.${process.pid}.part`);
  try {
    await pipeline(await src.get(digest), createWriteStream(tmp));
    const r = await dest.putFile(digest, tmp);
    return { copied: r.created, size: r.size };
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/** Step 2 (one activity per batch): blob bytes into the backup. Idempotent: copied blobs are skipped. */
export async function backupCopyBlobs(
  ctx: AppContext,
  input: BackupInput,
  batchNo: number,
  hb: (i: number) => void,
): Promise<{ copied: number; bytes: number; problems: { id: string; problem: string }[] }> {
  const path = backupPath(backupRoot(ctx, input.dir), input.backupId);
  const schema = await readSchema(path);
  const dest = backupBlobStore(path);
  const out = { copied: 0, bytes: 0, problems: [] as { id: string; problem: string }[] };
  const batch = await readBlobBatch(path, schema, batchNo);
  let done = 0;
  // Blob copies are fsync-bound; overlapping them is what gets near plain-copy speed.
  await mapLimit(batch, COPY_CONCURRENCY, async (b) => {
    try {
      const r = await copyBlobInto(ctx.blobs.primary, dest, b.digest, join(path, 'tmp'));
      if (r.copied) out.copied++;
      out.bytes += r.size;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'BLOB_NOT_FOUND' || code === 'DIGEST_MISMATCH' || code === 'ENOENT')
        out.problems.push({ id: b.digest, problem: code === 'DIGEST_MISMATCH' ? (e as Error).message : 'blob missing from the store' });
      else throw e;
    }
    hb(++done);
  });
  out.problems.sort((a, b) => (a.id < b.id ? -1 : 1));
  return out;
}

/** Step 3: manifest of every file with its digest, the manifest's digest, the summary. */
export async function backupFinalize(ctx: AppContext, input: BackupInput, problems: { id: string; problem: string }[]): Promise<BackupSummary> {
  const path = backupPath(backupRoot(ctx, input.dir), input.backupId);
  const schema = await readSchema(path);
  const done = await readSummary(path);
  if (done?.status === 'complete' && existsSync(join(path, 'manifest.json'))) return done;
  const entries: ManifestEntry[] = [];
  for (const t of schema.tables)
    entries.push({ path: `index/${t.file}`, sha256: t.sha256, size: t.bytes, mediaType: 'application/x-ndjson', meta: { rows: t.rows } });
  for (const f of ['index/schema.json', 'blobs.jsonl', 'anchors/chain.jsonl', 'keys/rootpack.json'])
    entries.push({ path: f, ...(await hashFile(join(path, f))) });
  const bad = new Set(problems.map((p) => p.id));
  const store = backupBlobStore(path);
  for (let b = 0; b < schema.blobBatchOffsets.length; b++) {
    for (const blob of await readBlobBatch(path, schema, b)) {
      if (bad.has(blob.digest)) continue;
      // The bytes were verified against the digest when copied; the digest is the file's sha256.
      entries.push({ path: `blobs/${store.pathFor(blob.digest).slice(join(path, 'blobs').length + 1)}`, sha256: blob.digest, size: blob.size });
    }
  }
  const summaryMeta = {
    backupId: input.backupId,
    items: schema.itemCount,
    blobs: schema.blobCount - bad.size,
    logSize: schema.logSize,
    latestAnchor: schema.latestAnchor,
    snapshotAt: schema.snapshotAt,
    problems,
  };
  const manifest = buildManifest({ kind: BACKUP_KIND, createdAt: schema.snapshotAt, meta: summaryMeta }, entries);
  const bytes = serializeManifest(manifest);
  const manifestSha256 = sha256Digest(bytes);
  await fsp.writeFile(join(path, 'manifest.json'), bytes);
  await fsp.writeFile(join(path, 'manifest.sha256'), `${manifestSha256}  manifest.json\n`);
  await fsp.rm(join(path, 'tmp'), { recursive: true, force: true });
  const sizeBytes = entries.reduce((s, e) => s + e.size, 0) + bytes.length;
  const summary: BackupSummary = {
    id: input.backupId,
    type: 'evidence-locker',
    status: 'complete',
    createdAt: schema.snapshotAt,
    finishedAt: new Date().toISOString(),
    location: path,
    sizeBytes,
    items: schema.itemCount,
    blobs: schema.blobCount - bad.size,
    blobBytes: schema.blobBytes,
    logSize: schema.logSize,
    latestAnchor: schema.latestAnchor,
    manifestSha256,
    problems,
  };
  await writeJson(join(path, 'backup.json'), summary);
  await recordBackupSucceeded(ctx.db, input.backupId, summary);
  await audit(ctx.db, {
    tenant: '*',
    actor: input.actor,
    action: 'backup.create',
    target: input.backupId,
    details: { location: path, items: summary.items, blobs: summary.blobs, manifestSha256, problems: problems.length },
  });
  return summary;
}

export async function backupFailed(ctx: AppContext, input: BackupInput, error: string): Promise<void> {
  const path = backupPath(backupRoot(ctx, input.dir), input.backupId);
  const s = await readSummary(path);
  if (s) await writeJson(join(path, 'backup.json'), { ...s, status: 'failed', error, finishedAt: new Date().toISOString() });
  // S3: whatever was uploaded has no manifest (listed as incomplete); the staging copy is only disk.
  if (isS3Location(input.dir || ctx.cfg.backup.dir)) await fsp.rm(path, { recursive: true, force: true });
  await recordBackupFailed(ctx.db, input.backupId, error).catch(() => {});
}

/** `stella backup list`: every backup under the backup directory, newest first. */
export async function listBackups(root: string): Promise<BackupSummary[]> {
  let names: string[];
  try {
    names = await fsp.readdir(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: BackupSummary[] = [];
  for (const n of names) {
    if (!ID_RE.test(n)) continue;
    const s = await readSummary(join(root, n));
    if (!s) continue;
    if (s.status === 'complete' && !existsSync(join(root, n, 'manifest.json'))) s.status = 'failed';
    out.push(s);
  }
  return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

export interface BackupCheck {
  ok: boolean;
  manifest: ArchiveManifest;
  manifestSha256: string;
  problems: { path: string; problem: string }[];
  rootpack: RootPack;
}

/**
 * Checks a backup before restoring from it: manifest.json against manifest.sha256, and every
 * non-blob file against the manifest. Blobs are verified by digest as they are restored
 * (or here too, with `full`).
 */
export async function checkBackup(path: string, opts: { full?: boolean; hb?: () => void } = {}): Promise<BackupCheck> {
  let bytes: Buffer;
  try {
    bytes = await fsp.readFile(join(path, 'manifest.json'));
  } catch {
    throw notFound(`no complete backup at ${path} (manifest.json missing)`);
  }
  const recorded = (await fsp.readFile(join(path, 'manifest.sha256'), 'utf8').catch(() => '')).trim().split(/\s+/)[0];
  const manifestSha256 = sha256Digest(bytes);
  if (recorded !== manifestSha256)
    throw integrity(`backup manifest digest mismatch: manifest.sha256 says ${recorded || '(missing)'}, manifest.json hashes to ${manifestSha256}`);
  const manifest = parseManifest(bytes);
  if (manifest.kind !== BACKUP_KIND) throw badInput(`${path} is a ${manifest.kind}, not an evidence-locker backup`);
  const problems: { path: string; problem: string }[] = [];
  for (const e of manifest.entries) {
    if (!opts.full && e.path.startsWith('blobs/')) continue;
    const h = await hashFile(join(path, e.path)).catch(() => null);
    if (!h) problems.push({ path: e.path, problem: 'missing' });
    else if (h.sha256 !== e.sha256 || h.size !== e.size)
      problems.push({ path: e.path, problem: `hashes to ${h.sha256} (${h.size} bytes), manifest says ${e.sha256} (${e.size} bytes)` });
    opts.hb?.();
  }
  const rootpack = await loadRootPack(await fsp.readFile(join(path, 'keys', 'rootpack.json'), 'utf8'));
  return { ok: problems.length === 0, manifest, manifestSha256, problems, rootpack };
}

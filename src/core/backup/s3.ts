/**
 * S3 backup locations (`Backup:Path` / `--output-dir` = `s3://bucket[/prefix]`). A backup is
 * built in a local staging directory exactly as for a filesystem location, then uploaded to
 * `<prefix>/<backup-id>/<path>`, one object per file, each with x-amz-checksum-sha256. The
 * manifest goes LAST: an interrupted upload leaves no manifest.json, and only backups with a
 * manifest count as complete (list) or restorable (restore).
 */
import { createReadStream, createWriteStream, existsSync, promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { AppContext } from '../context';
import { createS3Client } from '../../blob/s3';
import { S3_URL_RE } from '../../config';
import { parseManifest, type ManifestEntry } from '../../archive';
import { sha256Digest, sha256File } from '../../lib/hash';
import { mapLimit } from '../../lib/concurrency';
import { walkFiles } from '../../lib/walk';
import { audit } from '../audit';
import { StellaError, badInput, integrity, notFound } from '../../lib/errors';
import { recordBackupUploaded } from './runs';
import { BACKUP_KIND, backupPath, readSummary, validateBackupId, type BackupInput, type BackupSummary } from './backup';

export interface S3Location {
  bucket: string;
  prefix: string;
  url: string;
}

/** backup.json goes first (so an interrupted upload still lists with its size and time). */
const FIRST = ['backup.json'];
/** Files uploaded after everything else, in this order; manifest.json is the commit point. */
const LAST = ['manifest.sha256', 'manifest.json'];
const UPLOAD_CONCURRENCY = 8;

export function isS3Url(s?: string | null): s is string {
  return !!s && /^s3:\/\//i.test(s);
}

export function parseS3Location(s: string): S3Location {
  const m = S3_URL_RE.exec(s);
  if (!m) throw badInput(`malformed S3 backup location ${JSON.stringify(s)}: expected s3://<bucket>[/<prefix>]`);
  const prefix = m[2] ? `${m[2]}/` : '';
  return { bucket: m[1]!, prefix, url: `s3://${m[1]}/${prefix}`.replace(/\/$/, '') };
}

/** The S3 location for an explicit dir, or the configured one; null when it is a directory. */
export function s3LocationOf(ctx: AppContext, dir?: string | null): S3Location | null {
  const d = dir || ctx.cfg.backup.dir;
  return isS3Url(d) ? parseS3Location(d) : null;
}

/** Where S3 backups are built before upload (and downloaded to before a restore). */
export function backupStagingRoot(ctx: AppContext): string {
  return join(ctx.cfg.dataDir, 'tmp', 'backup-staging');
}

export function restoreStagingRoot(ctx: AppContext, restoreId: string): string {
  return join(ctx.cfg.dataDir, 'tmp', 'restore-staging', validateBackupId(restoreId));
}

const clients = new WeakMap<AppContext, S3Client>();
function clientOf(ctx: AppContext): S3Client {
  let c = clients.get(ctx);
  if (!c) {
    const s = ctx.cfg.backup.s3;
    c = createS3Client({
      bucket: '',
      region: s.region,
      endpoint: s.endpoint,
      accessKeyId: s.accessKeyId,
      secretAccessKey: s.secretAccessKey,
      forcePathStyle: s.forcePathStyle,
    });
    clients.set(ctx, c);
  }
  return c;
}

/** Fails fast, with the location named, when the bucket is missing or unreachable. */
export async function checkS3Location(ctx: AppContext, loc: S3Location): Promise<void> {
  try {
    await clientOf(ctx).send(new HeadBucketCommand({ Bucket: loc.bucket }));
  } catch (e) {
    if (isNotFound(e)) throw notFound(`backup location ${loc.url}: bucket ${loc.bucket} does not exist`);
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 403)
      throw new StellaError(
        'FORBIDDEN',
        `backup location ${loc.url}: access to bucket ${loc.bucket} denied (STELLA_S3_ACCESS_KEY_ID / STELLA_S3_SECRET_ACCESS_KEY)`,
      );
    // UNAVAILABLE: activities retry it (activities/failure.ts); a missing bucket or denied access is final.
    throw new StellaError('UNAVAILABLE', `backup location ${loc.url}: ${(e as Error).message || (e as Error).name}`);
  }
}

const keyOf = (loc: S3Location, id: string, rel: string) => `${loc.prefix}${id}/${rel}`;
const urlOf = (loc: S3Location, id: string) => `${loc.url}/${id}`;

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NotFound' || err?.name === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404;
}

async function hashFile(file: string): Promise<{ hex: string; size: number }> {
  const { digest, size } = await sha256File(file);
  return { hex: digest.slice('sha256:'.length), size };
}

/** Relative paths of the files below root, sorted. */
async function walk(root: string): Promise<string[]> {
  const out: string[] = [];
  for await (const f of walkFiles(root)) out.push(f.rel);
  return out.sort();
}

async function head(client: S3Client, bucket: string, key: string): Promise<{ size: number; sha256b64?: string; sha256hex?: string } | null> {
  try {
    const r = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
    return { size: r.ContentLength ?? 0, sha256b64: r.ChecksumSHA256, sha256hex: r.Metadata?.sha256 };
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/**
 * Uploads one file with its SHA-256 checksum (x-amz-checksum-sha256 plus the algorithm header,
 * so the server checks the bytes and keeps the checksum for HEAD; also as x-amz-meta-sha256 for
 * servers that keep no checksums); skips an object already there with the same size and checksum. */
async function putChecked(client: S3Client, bucket: string, key: string, file: string): Promise<{ uploaded: boolean; size: number }> {
  const { hex, size } = await hashFile(file);
  const b64 = Buffer.from(hex, 'hex').toString('base64');
  const h = await head(client, bucket, key);
  if (h && h.size === size && (h.sha256b64 === b64 || h.sha256hex === hex)) return { uploaded: false, size };
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: createReadStream(file),
      ContentLength: size,
      ChecksumAlgorithm: 'SHA256',
      ChecksumSHA256: b64,
      Metadata: { sha256: hex },
    }),
  );
  return { uploaded: true, size };
}

async function listSizes(client: S3Client, bucket: string, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let token: string | undefined;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.set(o.Key!.slice(prefix.length), o.Size ?? 0);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

async function getBytes(client: S3Client, bucket: string, key: string): Promise<Buffer | null> {
  try {
    const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

export interface UploadResult {
  location: string;
  files: number;
  uploaded: number;
  skipped: number;
  bytes: number;
}

/**
 * Step 4 for S3 locations (one activity, heartbeating per file): the staged backup to S3,
 * manifest last, sizes checked by listing before the manifest is written; then the staging
 * directory goes. Resumable: objects already there with the right size and checksum are
 * skipped; a retry after the staging directory is gone returns the uploaded summary.
 */
export async function backupUpload(ctx: AppContext, input: BackupInput, hb: (d: unknown) => void): Promise<BackupSummary> {
  const loc = s3LocationOf(ctx, input.dir);
  if (!loc) throw badInput(`backup location ${input.dir || ctx.cfg.backup.dir} is not an s3:// URL`);
  const client = clientOf(ctx);
  const id = input.backupId;
  const path = backupPath(backupStagingRoot(ctx), id);
  const url = urlOf(loc, id);
  if (!existsSync(join(path, 'manifest.json'))) {
    const done = await readS3Summary(ctx, loc, id);
    if (done?.status === 'complete') return done;
    throw notFound(`backup ${id}: staging directory ${path} has no manifest.json and ${url} holds no complete backup`);
  }
  await checkS3Location(ctx, loc);
  const local = await readSummary(path);
  if (!local) throw notFound(`backup ${id}: staging directory ${path} has no backup.json`);
  const summary: BackupSummary = { ...local, location: url };
  await fsp.writeFile(join(path, 'backup.json'), JSON.stringify(summary, null, 2) + '\n');

  const files = (await walk(path)).filter((f) => !f.startsWith('tmp/') && !f.includes('.tmp'));
  const body = files.filter((f) => !LAST.includes(f) && !FIRST.includes(f));
  const out = { location: url, files: files.length, uploaded: 0, skipped: 0, bytes: 0 };
  const count = (r: { uploaded: boolean; size: number }) => {
    if (r.uploaded) out.uploaded++;
    else out.skipped++;
    out.bytes += r.size;
    hb({ uploaded: out.uploaded, skipped: out.skipped, of: files.length });
  };
  for (const f of FIRST) count(await putChecked(client, loc.bucket, keyOf(loc, id, f), join(path, f)));
  await mapLimit(body, UPLOAD_CONCURRENCY, async (f) => count(await putChecked(client, loc.bucket, keyOf(loc, id, f), join(path, f))));

  // Before the commit point: every object is there with its local size.
  const verify = async (names: string[]) => {
    const remote = await listSizes(client, loc.bucket, keyOf(loc, id, ''));
    const bad: string[] = [];
    for (const f of names) {
      const want = (await fsp.stat(join(path, f))).size;
      const got = remote.get(f);
      if (got !== want) bad.push(`${f}: ${got === undefined ? 'missing' : `${got} bytes`}, expected ${want}`);
    }
    if (bad.length)
      throw integrity(`upload of backup ${id} to ${url} is incomplete: ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? ` (+${bad.length - 5} more)` : ''}`);
  };
  await verify([...FIRST, ...body]);
  for (const f of LAST) count(await putChecked(client, loc.bucket, keyOf(loc, id, f), join(path, f)));
  await verify(files);

  await recordBackupUploaded(ctx.db, id, url, summary);
  await audit(ctx.db, { tenant: '*', actor: input.actor, action: 'backup.upload', target: id, details: { ...out } });
  await fsp.rm(path, { recursive: true, force: true });
  return summary;
}

/** backup.json of an uploaded backup, its status decided by the manifest's presence. */
export async function readS3Summary(ctx: AppContext, loc: S3Location, id: string): Promise<BackupSummary | null> {
  const client = clientOf(ctx);
  const [raw, manifest] = await Promise.all([
    getBytes(client, loc.bucket, keyOf(loc, id, 'backup.json')),
    head(client, loc.bucket, keyOf(loc, id, 'manifest.json')),
  ]);
  if (!raw && !manifest) return null;
  let s: BackupSummary;
  try {
    s = raw ? (JSON.parse(raw.toString('utf8')) as BackupSummary) : emptySummary(id, urlOf(loc, id));
  } catch {
    s = emptySummary(id, urlOf(loc, id));
  }
  s.location = urlOf(loc, id);
  // Only the manifest (uploaded last) makes a backup complete; without it the upload was interrupted.
  s.status = manifest ? 'complete' : 'incomplete';
  return s;
}

function emptySummary(id: string, location: string): BackupSummary {
  return {
    id,
    type: 'evidence-locker',
    status: 'incomplete',
    createdAt: '',
    location,
    sizeBytes: 0,
    items: 0,
    blobs: 0,
    blobBytes: 0,
    logSize: 0,
    latestAnchor: null,
  };
}

/** `stella backup list` on an S3 location: one entry per `<prefix>/<id>/`, complete only with a manifest. */
export async function listS3Backups(ctx: AppContext, loc: S3Location): Promise<BackupSummary[]> {
  const client = clientOf(ctx);
  await checkS3Location(ctx, loc);
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const r = await client.send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: loc.prefix, Delimiter: '/', ContinuationToken: token }));
    for (const p of r.CommonPrefixes ?? []) {
      const id = p.Prefix!.slice(loc.prefix.length).replace(/\/$/, '');
      if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) ids.push(id);
    }
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  // A prefix with objects but neither backup.json nor manifest is still an (incomplete) backup.
  const out = await mapLimit(ids, 8, async (id) => (await readS3Summary(ctx, loc, id)) ?? emptySummary(id, urlOf(loc, id)));
  return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

export interface FetchResult {
  dir: string;
  source: string;
  files: number;
  downloaded: number;
  bytes: number;
}

/**
 * Restore from S3, step 0 (one activity, heartbeating per file): the backup into
 * `<dataDir>/tmp/restore-staging/<restore-id>/<backup-id>/`, every file checked against the
 * manifest's sha256 and size (and the manifest against manifest.sha256). Refuses a backup
 * without a manifest. Resumable: files already staged with the right digest are kept.
 */
export async function restoreFetch(
  ctx: AppContext,
  input: { restoreId: string; backupId?: string | null; backupDir?: string | null },
  hb: (d: unknown) => void,
): Promise<FetchResult> {
  const loc = s3LocationOf(ctx, input.backupDir);
  if (!loc || !input.backupId) throw badInput('restore from S3 needs --backup-id and an s3:// backup location');
  const id = validateBackupId(input.backupId);
  const b: RemoteBackup = { client: clientOf(ctx), loc, id, url: urlOf(loc, id) };
  await checkS3Location(ctx, loc);
  const root = restoreStagingRoot(ctx, input.restoreId);
  const dest = join(root, id);
  const { manifestBytes, sumBytes, manifest } = await fetchManifest(b);

  const out: FetchResult = { dir: root, source: b.url, files: manifest.entries.length, downloaded: 0, bytes: 0 };
  let done = 0;
  await mapLimit(manifest.entries, UPLOAD_CONCURRENCY, async (e) => {
    if (await stageEntry(b, dest, e)) {
      out.downloaded++;
      out.bytes += e.size;
    }
    hb({ files: ++done, of: out.files });
  });
  // Manifest last, locally too: the staged copy is complete only once every file checked out.
  const summary = await getBytes(b.client, loc.bucket, keyOf(loc, id, 'backup.json'));
  if (summary) await fsp.writeFile(join(dest, 'backup.json'), summary);
  await fsp.writeFile(join(dest, 'manifest.sha256'), sumBytes);
  await fsp.writeFile(join(dest, 'manifest.json'), manifestBytes);
  return out;
}

/** One backup in S3: the client, its location, id and URL (for messages). */
interface RemoteBackup {
  client: S3Client;
  loc: S3Location;
  id: string;
  url: string;
}

/** The backup's manifest, checked against manifest.sha256; a backup without one (an interrupted upload) is refused. */
async function fetchManifest(b: RemoteBackup): Promise<{ manifestBytes: Buffer; sumBytes: Buffer; manifest: ReturnType<typeof parseManifest> }> {
  const { client, loc, id, url } = b;
  const manifestBytes = await getBytes(client, loc.bucket, keyOf(loc, id, 'manifest.json'));
  if (!manifestBytes) {
    const partial = (await listSizes(client, loc.bucket, keyOf(loc, id, ''))).size;
    throw notFound(
      partial
        ? `no complete backup ${id} at ${url}: manifest.json is missing (${partial} object(s) present: an interrupted upload); refusing to restore from it`
        : `no complete backup ${id} at ${url}: no such backup (stella backup list --type evidence-locker --dir ${loc.url})`,
    );
  }
  const sumBytes = await getBytes(client, loc.bucket, keyOf(loc, id, 'manifest.sha256'));
  const recorded = (sumBytes?.toString('utf8') ?? '').trim().split(/\s+/)[0];
  const manifestSha256 = sha256Digest(manifestBytes);
  if (recorded !== manifestSha256)
    throw integrity(`backup ${id} at ${url}: manifest.sha256 says ${recorded || '(missing)'}, manifest.json hashes to ${manifestSha256}`);
  const manifest = parseManifest(manifestBytes);
  if (manifest.kind !== BACKUP_KIND) throw badInput(`${url} is a ${manifest.kind}, not an evidence-locker backup`);
  return { manifestBytes, sumBytes: sumBytes!, manifest };
}

/**
 * Stages one manifest entry under dest: kept when already there with the right digest (false),
 * otherwise downloaded, checked against the manifest and renamed into place (true).
 */
async function stageEntry(b: RemoteBackup, dest: string, e: ManifestEntry): Promise<boolean> {
  // The manifest names the files; never let it name one outside the staging directory.
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(e.path) || e.path.split('/').some((s) => s === '..' || s === '.'))
    throw integrity(`backup ${b.id} manifest names an unsafe path ${JSON.stringify(e.path)}`);
  const file = join(dest, e.path);
  const have = existsSync(file) ? await hashFile(file) : null;
  if (have && `sha256:${have.hex}` === e.sha256 && have.size === e.size) return false;
  await fsp.mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.part`;
  try {
    const body = await openObject(b, e.path);
    const got = await writeHashed(body, tmp);
    if (got.digest !== e.sha256 || got.size !== e.size)
      throw integrity(`backup ${b.id} at ${b.url}: ${e.path} hashes to ${got.digest} (${got.size} bytes), manifest says ${e.sha256} (${e.size} bytes)`);
    await fsp.rename(tmp, file);
  } finally {
    await fsp.rm(tmp, { force: true });
  }
  return true;
}

/** The body of a file the manifest lists; a missing object is an integrity failure. */
async function openObject(b: RemoteBackup, rel: string): Promise<Readable> {
  try {
    return (await b.client.send(new GetObjectCommand({ Bucket: b.loc.bucket, Key: keyOf(b.loc, b.id, rel) }))).Body as Readable;
  } catch (err) {
    if (isNotFound(err)) throw integrity(`backup ${b.id} at ${b.url} is missing ${rel} (listed in its manifest)`);
    throw err;
  }
}

/** Streams body into file, returning the sha256 digest and size of what was written. */
async function writeHashed(body: Readable, file: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(
    body,
    new Transform({
      transform(c: Buffer, _enc, cb) {
        h.update(c);
        size += c.length;
        cb(null, c);
      },
    }),
    createWriteStream(file),
  );
  return { digest: `sha256:${h.digest('hex')}`, size };
}

export async function restoreCleanup(ctx: AppContext, restoreId: string): Promise<void> {
  await fsp.rm(restoreStagingRoot(ctx, restoreId), { recursive: true, force: true });
}

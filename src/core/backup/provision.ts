/** DR-001 step 1: `stella evidence storage provision` — prepare a restore target (directory or S3 bucket). */
import { promises as fsp } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { badInput, StellaError } from '../../lib/errors';
import { parseSize } from '../../lib/format';
import { audit } from '../audit';
import type { AppContext } from '../context';
import { S3BlobStore } from '../../blob';
import { S3_URL_RE } from '../../config';

/** Bytes available to us at `path` (statfs of the nearest existing ancestor); null if unknown. */
export async function freeSpace(path: string): Promise<number | null> {
  let dir = resolve(path);
  for (;;) {
    try {
      const s = await fsp.statfs(dir);
      return Number(s.bavail) * Number(s.bsize);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null;
      const up = dirname(dir);
      if (up === dir) return null;
      dir = up;
    }
  }
}

export type ProvisionResult = {
  path: string;
  requestedBytes: number;
  availableBytes: number | null;
  created: boolean;
  ok: true;
};

/**
 * DR-001 step 1: prepare a restore target. Creates the directory, checks it is writable and
 * that the filesystem has at least `size` bytes free; refuses otherwise (nothing is reserved:
 * the check is repeated when the restore starts).
 */
export async function provisionStorage(ctx: AppContext, q: { size: string; path?: string | null; actor: string }): Promise<ProvisionResult> {
  const requestedBytes = parseSize(q.size);
  const bucketUrl = q.path && /^s3:\/\//i.test(q.path) ? q.path : !q.path && ctx.cfg.blob.kind === 's3' ? `s3://${ctx.cfg.blob.bucket}` : null;
  if (bucketUrl) return provisionBucket(ctx, bucketUrl, requestedBytes, q.actor);
  const cfgPath = ctx.cfg.blob.kind === 'fs' ? ctx.cfg.blob.path : null;
  const path = resolve(q.path || cfgPath || join(ctx.cfg.dataDir, 'evidence'));
  const available = await freeSpace(path);
  if (available !== null && available < requestedBytes) {
    throw new StellaError('TOO_LARGE', `not enough space at ${path}: ${available} bytes free, ${requestedBytes} requested; nothing provisioned`);
  }
  let created = false;
  try {
    await fsp.mkdir(path, { recursive: false });
    created = true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      await fsp.mkdir(path, { recursive: true });
      created = true;
    } else if (code !== 'EEXIST') throw e;
  }
  const st = await fsp.stat(path);
  if (!st.isDirectory()) throw badInput(`${path} exists and is not a directory`);
  const probe = join(path, `.stella-provision-${process.pid}`);
  try {
    await fsp.writeFile(probe, 'ok');
  } catch (e) {
    throw new StellaError('FORBIDDEN', `${path} is not writable: ${(e as Error).message}`);
  } finally {
    await fsp.rm(probe, { force: true });
  }
  await fsp.writeFile(
    join(path, '.stella-provisioned.json'),
    JSON.stringify({ requestedBytes, availableBytes: available, at: new Date().toISOString(), actor: q.actor }) + '\n',
  );
  await audit(ctx.db, {
    tenant: '*',
    actor: q.actor,
    action: 'evidence.storage.provision',
    target: path,
    details: { requestedBytes, availableBytes: available },
  }).catch(() => {});
  return { path, requestedBytes, availableBytes: available, created, ok: true };
}

/**
 * An S3 target: the bucket is created when missing and must take a write, read and delete.
 * S3 has no fixed capacity, so there is no free-space figure to check (availableBytes null).
 */
async function provisionBucket(ctx: AppContext, url: string, requestedBytes: number, actor: string): Promise<ProvisionResult> {
  const m = S3_URL_RE.exec(url);
  if (!m) throw badInput(`bad bucket URL ${JSON.stringify(url)}: expected s3://<bucket>[/<prefix>]`);
  const s3 = ctx.cfg.blob.kind === 's3' ? ctx.cfg.blob : ctx.cfg.backup.s3;
  const store = S3BlobStore.create({
    bucket: m[1]!,
    prefix: m[2],
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: s3.forcePathStyle,
  });
  const existed = await store.bucketExists();
  if (!existed) await store.ensureBucket();
  try {
    await store.health();
  } catch (e) {
    throw new StellaError('FORBIDDEN', `${url} does not take writes: ${(e as Error).message}`);
  }
  await audit(ctx.db, { tenant: '*', actor, action: 'evidence.storage.provision', target: url, details: { requestedBytes, bucketCreated: !existed } }).catch(
    () => {},
  );
  return { path: url, requestedBytes, availableBytes: null, created: !existed, ok: true };
}

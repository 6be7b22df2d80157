import { lockerSnapshot } from './support/snapshot';
import { describe, it, expect, afterAll } from 'vitest';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import { DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import type { StellaWorkerGroup as Worker } from '../workers/worker';
import { harness, freshBucket, type Harness } from './support/context';
import { apiFor, bearer } from './support/api';
import { createAppContext, closeAppContext, type AppContext } from '../src/core/context';
import { createStellaWorker } from '../workers/worker';
import { createAnchor } from '../src/core/anchoring';
import { createS3Client } from '../src/blob/s3';
import { listS3Backups, parseS3Location } from '../src/core/backup/s3';
import type { BackupSummary } from '../src/core/backup/backup';
import type { RestoreOutcome } from '../workflows/backup';

const ART = `sha256:${'cd'.repeat(32)}`;

async function seed(ctx: AppContext, n: number, tag: string) {
  const res = await ctx.evidence.ingestMany(
    Array.from({ length: n }, (_, i) => ({
      tenant: 'default',
      data: Buffer.from(`${tag} ${i} ${randomBytes(8).toString('hex')}\n`),
      kind: (i % 4 === 0 ? 'sbom' : 'scan-report') as 'sbom' | 'scan-report',
      mediaType: 'text/plain',
      subjects: [ART],
    })),
  );
  await ctx.evidence.ingest({
    tenant: 'default',
    data: Buffer.from(`${tag} vex`),
    kind: 'vex',
    mediaType: 'text/plain',
    subjects: [ART],
    parents: [{ id: res[0]!.id }],
  });
}

function innermost(e: unknown): string {
  let c = e as Error;
  while (c.cause instanceof Error) c = c.cause;
  return c.message;
}

describe('backup to S3 and restore from S3 (real PostgreSQL, Temporal, moto S3)', () => {
  let h: Harness;
  const extra: { ctx?: AppContext; worker?: Worker; done?: Promise<void> }[] = [];
  afterAll(async () => {
    for (const e of extra) {
      if (e.worker?.getState() === 'RUNNING') e.worker.shutdown();
      await e.done?.catch(() => {});
      if (e.ctx) await closeAppContext(e.ctx).catch(() => {});
    }
    await h?.connection.close().catch(() => {});
  });

  it('backs up to s3://bucket/prefix (checksummed objects, manifest last), lists it, restores on a new database and data dir with identical digests and roots; an upload without a manifest is incomplete and refused', async () => {
    const bucket = await freshBucket();
    const url = `s3://${bucket}/stella/nightly`;
    h = await harness({
      env: { STELLA_BACKUP_DIR: url, STELLA_S3_ENDPOINT: inject('s3Endpoint'), STELLA_S3_ACCESS_KEY_ID: 'test', STELLA_S3_SECRET_ACCESS_KEY: 'test' },
    });
    const cfg = h.ctx.cfg;
    expect(cfg.backup.dir).toBe(url);
    const s3 = createS3Client({ bucket, region: 'us-east-1', endpoint: inject('s3Endpoint'), accessKeyId: 'test', secretAccessKey: 'test' });
    await seed(h.ctx, 30, 'a');
    const a1 = await createAnchor(h.ctx, { reason: 'test' });
    await seed(h.ctx, 12, 'b');
    const a2 = await createAnchor(h.ctx, { reason: 'test' });
    expect(a1.anchor && a2.anchor).toBeTruthy();

    // Through the API, with the configured (s3) location.
    const app = await apiFor(h);
    const auth = await bearer(h, ['admin']);
    const started = await app.inject({ method: 'POST', url: '/backups', headers: auth, payload: { type: 'evidence-locker' } });
    expect(started.statusCode).toBe(202);
    const { backupId, location } = started.json() as { backupId: string; location: string };
    expect(location).toBe(`${url}/${backupId}`);
    const summary: BackupSummary = await h.client.workflow.getHandle(backupId).result();
    expect(summary).toMatchObject({ status: 'complete', location: `${url}/${backupId}`, items: 44, blobs: 44, logSize: 44 });
    expect(summary.latestAnchor?.id).toBe(a2.anchor!.id);
    // The status route answers with the same summary, through its response contract.
    const st = await app.inject({ method: 'GET', url: `/backups/${backupId}`, headers: auth });
    expect(st.statusCode).toBe(200);
    expect(st.json()).toMatchObject({ status: 'COMPLETED', running: false, result: { id: backupId, status: 'complete', items: 44 } });
    // Staging directory gone.
    expect(readdirSync(join(cfg.dataDir, 'tmp', 'backup-staging'))).toEqual([]);

    // Objects: every file under <prefix>/<id>/, each with its SHA-256 checksum.
    const objs = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `stella/nightly/${backupId}/` }));
    const keys = (objs.Contents ?? []).map((o) => o.Key!.slice(`stella/nightly/${backupId}/`.length));
    expect(keys).toEqual(
      expect.arrayContaining([
        'manifest.json',
        'manifest.sha256',
        'backup.json',
        'index/schema.json',
        'blobs.jsonl',
        'anchors/chain.jsonl',
        'keys/rootpack.json',
      ]),
    );
    expect(keys.filter((k) => k.startsWith('blobs/sha256/')).length).toBe(44);
    const someBlob = keys.find((k) => k.startsWith('blobs/sha256/'))!;
    const hd = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `stella/nightly/${backupId}/${someBlob}`, ChecksumMode: 'ENABLED' }));
    const hex = someBlob.split('/').pop()!;
    expect(Buffer.from(hd.ChecksumSHA256 ?? '', 'base64').toString('hex')).toBe(hex);
    const mfHead = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `stella/nightly/${backupId}/manifest.json`, ChecksumMode: 'ENABLED' }));
    expect(mfHead.ContentLength).toBeGreaterThan(0);
    expect(mfHead.ChecksumSHA256).toMatch(/^[A-Za-z0-9+/]{43}=$/);

    // A second backup whose upload was "interrupted": its manifest object is gone.
    const brokenId = `bk-broken-${randomBytes(3).toString('hex')}`;
    await h.client.workflow.execute('backupEvidenceLocker', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: brokenId,
      args: [{ backupId: brokenId, dir: url, actor: 'test' }],
    });
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: `stella/nightly/${brokenId}/manifest.json` }));

    const listed = await app.inject({ method: 'GET', url: '/backups?type=evidence-locker', headers: auth });
    expect(listed.statusCode).toBe(200);
    const lb = listed.json() as { location: string; backups: BackupSummary[] };
    expect(lb.location).toBe(url);
    expect(Object.fromEntries(lb.backups.map((b) => [b.id, b.status]))).toEqual({ [backupId]: 'complete', [brokenId]: 'incomplete' });
    expect(lb.backups.find((b) => b.id === backupId)).toMatchObject({ items: 44, location: `${url}/${backupId}` });

    // Restore refuses the incomplete one, clearly, before touching anything.
    const refused = await h.client.workflow.start('restoreEvidenceLocker', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: `restore-${randomBytes(4).toString('hex')}`,
      args: [{ restoreId: '', actor: 'test', backupId: brokenId, backupDir: url, target: null }],
    });
    const err = await refused.result().then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(innermost(err)).toMatch(
      new RegExp(`no complete backup ${brokenId} at ${url}/${brokenId}: manifest.json is missing .*interrupted upload.*refusing to restore`),
    );
    // Bad locations are refused before any work starts.
    const noBucket = await app.inject({
      method: 'POST',
      url: '/backups',
      headers: auth,
      payload: { type: 'evidence-locker', outputDir: 's3://no-such-bucket-4711/x' },
    });
    expect([noBucket.statusCode, (noBucket.json() as { message?: string; error?: string }).message ?? noBucket.body]).toEqual([
      404,
      expect.stringContaining('bucket no-such-bucket-4711 does not exist'),
    ]);
    const malformed = await app.inject({ method: 'GET', url: '/backups?dir=s3://A_B', headers: auth });
    expect(malformed.statusCode).toBe(400);
    await app.close();
    const before = await lockerSnapshot(h.ctx.db);

    // Disaster: stop everything, drop the database, delete the data directory (keys included).
    await h.stopWorker();
    await closeAppContext(h.ctx);
    const admin = new pg.Client(inject('pgUrl'));
    await admin.connect();
    const name = new URL(cfg.databaseUrl!).pathname.slice(1);
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    rmSync(cfg.dataDir, { recursive: true, force: true });

    const ctx2 = await createAppContext(cfg);
    const w = await createStellaWorker(ctx2, { workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') }, shutdownGraceTime: '1s' });
    extra.push({ ctx: ctx2, worker: w.worker, done: w.worker.run().finally(() => w.connection.close()) });

    // Listing works with no database state at all: it reads the bucket.
    expect((await listS3Backups(ctx2, parseS3Location(url))).map((b) => [b.id, b.status])).toEqual(
      expect.arrayContaining([
        [backupId, 'complete'],
        [brokenId, 'incomplete'],
      ]),
    );

    const restoreId = `restore-${randomBytes(4).toString('hex')}`;
    const out: RestoreOutcome = await h.client.workflow.execute('restoreEvidenceLocker', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: restoreId,
      args: [{ restoreId, actor: 'test', backupId, backupDir: url, target: null }],
    });
    expect(out.outcome).toBe('passed');
    expect(out.items).toBe(44);
    expect(out.verify).toMatchObject({ kind: 'verify-workflow', status: 'passed', failed: 0, checked: 44 });
    expect(out.anchors).toMatchObject({ ok: true, rootsMatchBackup: true, mismatches: [], checked: 2 });
    const after = await lockerSnapshot(ctx2.db);
    expect(after).toEqual(before);
    for (const it of before.items) expect((await ctx2.blobs.primary.hash(it.id))?.actual).toBe(it.id);
    // The downloaded copy is cleaned up.
    expect(existsSync(join(cfg.dataDir, 'tmp', 'restore-staging', restoreId))).toBe(false);
    const audits = await ctx2.db.query(`SELECT action FROM audit_log WHERE action LIKE 'evidence.restore.%' ORDER BY id`);
    expect(audits.rows.map((r) => r.action)).toEqual(['evidence.restore.start', 'evidence.restore.finish']);
  }, 120_000);
});

describe('S3 backup upload resumes', () => {
  it('an upload killed midway leaves no manifest (incomplete); the retry skips objects already there and commits the manifest last', async () => {
    const bucket = await freshBucket();
    const url = `s3://${bucket}/bk`;
    const h2 = await harness({
      worker: false,
      env: { STELLA_BACKUP_DIR: url, STELLA_S3_ENDPOINT: inject('s3Endpoint'), STELLA_S3_ACCESS_KEY_ID: 'test', STELLA_S3_SECRET_ACCESS_KEY: 'test' },
    });
    try {
      await seed(h2.ctx, 24, 'r');
      const { backupExport, backupCopyBlobs, backupFinalize } = await import('../src/core/backup/backup');
      const { backupUpload } = await import('../src/core/backup/s3');
      const input = { backupId: `bk-resume-${randomBytes(3).toString('hex')}`, dir: '', actor: 'test' };
      const schema = await backupExport(h2.ctx, input, () => {});
      for (let b = 0; b < schema.blobBatchOffsets.length; b++) await backupCopyBlobs(h2.ctx, input, b, () => {});
      await backupFinalize(h2.ctx, input, []);

      // The "worker dies" after ten files: heartbeats throw from then on.
      let beats = 0;
      const killed = await backupUpload(h2.ctx, input, () => {
        if (++beats >= 10) throw new Error('worker killed');
      }).then(
        () => null,
        (e: Error) => e,
      );
      expect(killed?.message).toBe('worker killed');
      const loc = parseS3Location(url);
      expect((await listS3Backups(h2.ctx, loc)).map((b) => [b.id, b.status])).toEqual([[input.backupId, 'incomplete']]);

      const s = await backupUpload(h2.ctx, input, () => {});
      expect(s).toMatchObject({ id: input.backupId, status: 'complete', location: `${url}/${input.backupId}`, items: 25 });
      const a = await h2.ctx.db.query(`SELECT details FROM audit_log WHERE action='backup.upload' AND target=$1`, [input.backupId]);
      expect(a.rowCount).toBe(1);
      const d = a.rows[0].details as { skipped: number; uploaded: number; files: number };
      expect(d.skipped).toBeGreaterThanOrEqual(9);
      expect(d.uploaded + d.skipped).toBe(d.files);
      expect((await listS3Backups(h2.ctx, loc)).map((b) => [b.id, b.status])).toEqual([[input.backupId, 'complete']]);
      // A retry after success (staging gone) returns the uploaded summary.
      expect(await backupUpload(h2.ctx, input, () => {})).toMatchObject({ id: input.backupId, status: 'complete' });
    } finally {
      await h2.close();
    }
  }, 60_000);
});

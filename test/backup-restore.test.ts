import { lockerSnapshot } from './support/snapshot';
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import type { StellaWorkerGroup as Worker } from '../workers/worker';
import { harness, type Harness } from './support/context';
import { createAppContext, closeAppContext, type AppContext } from '../src/core/context';
import { createStellaWorker } from '../workers/worker';
import { createAnchor } from '../src/core/anchoring';
import { newBackupId, listBackups } from '../src/core/backup/backup';
import type { BackupSummary } from '../src/core/backup/backup';
import type { RestoreOutcome } from '../workflows/backup';

const ART = `sha256:${'ab'.repeat(32)}`;

async function seed(ctx: AppContext, n: number, tag: string) {
  const inputs = Array.from({ length: n }, (_, i) => ({
    tenant: 'default',
    data: Buffer.from(`${tag} item ${i} ${randomBytes(8).toString('hex')}\n`),
    kind: (i % 5 === 0 ? 'sbom' : 'scan-report') as 'sbom' | 'scan-report',
    mediaType: 'text/plain',
    subjects: [ART],
  }));
  const res = await ctx.evidence.ingestMany(inputs);
  // a few edges, so evidence_edges is non-empty
  await ctx.evidence.ingest({
    tenant: 'default',
    data: Buffer.from(`${tag} vex`),
    kind: 'vex',
    mediaType: 'text/plain',
    subjects: [ART],
    parents: [{ id: res[0]!.id }],
  });
  return res;
}

function dbName(url: string) {
  return new URL(url).pathname.slice(1);
}

async function dropAndRecreate(url: string) {
  const admin = new pg.Client(inject('pgUrl'));
  await admin.connect();
  const name = dbName(url);
  await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
}

async function startWorker(ctx: AppContext): Promise<{ worker: Worker; done: Promise<void> }> {
  const w = await createStellaWorker(ctx, { workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') }, shutdownGraceTime: '1s' });
  const done = w.worker.run().finally(() => w.connection.close());
  return { worker: w.worker, done };
}

describe('backup and disaster recovery (real PostgreSQL, Temporal, fs blobs)', () => {
  let h: Harness;
  const extra: { ctx?: AppContext; worker?: { worker: Worker; done: Promise<void> } }[] = [];
  afterAll(async () => {
    for (const e of extra) {
      if (e.worker && e.worker.worker.getState() === 'RUNNING') e.worker.worker.shutdown();
      await e.worker?.done.catch(() => {});
      if (e.ctx) await closeAppContext(e.ctx).catch(() => {});
    }
    await h?.connection.close().catch(() => {});
  });

  it('backup, delete the data dir and drop the database, restore: full verify and anchor verify pass with identical digests and roots; a killed worker resumes', async () => {
    h = await harness();
    const cfg = h.ctx.cfg;
    await seed(h.ctx, 1200, 'a');
    const a1 = await createAnchor(h.ctx, { reason: 'test' });
    await seed(h.ctx, 1000, 'b');
    const a2 = await createAnchor(h.ctx, { reason: 'test' });
    expect(a1.anchor && a2.anchor).toBeTruthy();

    const backups = mkdtempSync(join(inject('scratch'), 'backups-'));
    const backupId = newBackupId();
    const summary: BackupSummary = await h.client.workflow.execute('backupEvidenceLocker', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: backupId,
      args: [{ backupId, dir: backups, actor: 'test' }],
    });
    expect(summary.status).toBe('complete');
    expect(summary.items).toBe(2202);
    expect(summary.blobs).toBe(2202);
    expect(summary.latestAnchor?.id).toBe(a2.anchor!.id);
    expect(summary.manifestSha256).toMatch(/^sha256:[0-9a-f]{64}$/);
    const listed = await listBackups(backups);
    expect(listed.map((b) => [b.id, b.status, b.items])).toEqual([[backupId, 'complete', 2202]]);
    const before = await lockerSnapshot(h.ctx.db);

    // Disaster: stop everything, drop the database, delete the data directory (keys included).
    await h.stopWorker();
    await closeAppContext(h.ctx);
    await dropAndRecreate(cfg.databaseUrl!);
    rmSync(cfg.dataDir, { recursive: true, force: true });
    expect(existsSync(cfg.blob.kind === 'fs' ? cfg.blob.path : '/nonexistent')).toBe(false);

    // A new stack on the empty database (fresh keys), same task queue.
    const ctx2 = await createAppContext(cfg);
    const e1: (typeof extra)[number] = { ctx: ctx2, worker: await startWorker(ctx2) };
    extra.push(e1);
    const restoreId = `restore-${randomBytes(4).toString('hex')}`;
    const handle = await h.client.workflow.start('restoreEvidenceLocker', {
      taskQueue: cfg.temporal.taskQueue,
      workflowId: restoreId,
      args: [{ restoreId, actor: 'test', backupId, backupDir: backups, target: null }],
    });

    // Kill the worker once some batches are in, then bring up a new one.
    const batches = async () =>
      Number(
        (await ctx2.db.query('SELECT count(*)::int AS n FROM restore_batches WHERE restore_id=$1', [restoreId]).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n,
      );
    for (let i = 0; i < 600 && (await batches()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    e1.worker!.worker.shutdown();
    await e1.worker!.done;
    const doneAtKill = await batches();
    expect(doneAtKill).toBeGreaterThan(0);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    const e2 = { worker: await startWorker(ctx2) };
    extra.push(e2);

    const out: RestoreOutcome = await handle.result();
    expect(out.outcome).toBe('passed');
    expect(out.items).toBe(2202);
    expect(out.verify).toMatchObject({ kind: 'verify-workflow', status: 'passed', failed: 0 });
    expect((out.verify as { checked: number }).checked).toBe(2202);
    expect(out.anchors).toMatchObject({ ok: true, rootsMatchBackup: true, mismatches: [] });
    expect(out.anchors!.checked).toBe(2);

    const after = await lockerSnapshot(ctx2.db);
    expect(after.items).toEqual(before.items);
    expect(after.log).toEqual(before.log);
    expect(after.anchors).toEqual(before.anchors);
    expect(after.edges).toEqual(before.edges);
    // every batch applied exactly once despite the kill
    const dup = await ctx2.db.query('SELECT tbl, batch_no, count(*) FROM restore_batches WHERE restore_id=$1 GROUP BY 1,2 HAVING count(*) > 1', [restoreId]);
    expect(dup.rowCount).toBe(0);
    // the blobs are back, byte for byte
    for (const it of before.items.slice(0, 50)) expect((await ctx2.blobs.primary.hash(it.id))?.actual).toBe(it.id);
    // new ingests continue the restored log (sequences and log_state restored)
    const more = await ctx2.evidence.ingest({ tenant: 'default', data: Buffer.from('after restore'), kind: 'log', mediaType: 'text/plain', subjects: [ART] });
    expect(more.logSeq).toBe(2202);
    const audits = await ctx2.db.query(`SELECT action FROM audit_log WHERE action LIKE 'evidence.restore.%' ORDER BY id`);
    expect(audits.rows.map((r) => r.action)).toEqual(['evidence.restore.start', 'evidence.restore.finish']);
  }, 120_000);
});

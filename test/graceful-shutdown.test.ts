import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';

/**
 * `stella serve` on SIGTERM stops polling and lets the activity it is running finish before
 * exiting: the in-flight batch completes on its first attempt instead of timing out and retrying.
 */
const BIN = join(__dirname, '..', 'bin', 'stella.mjs');

describe('graceful shutdown of the worker', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ blob: 'fs', worker: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('SIGTERM lets the in-flight activity finish, then exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'graceful-'));
    for (let i = 0; i < 600; i++) writeFileSync(join(dir, `f${String(i).padStart(4, '0')}.json`), `{"i":${i},"r":"${randomBytes(8).toString('hex')}"}`);
    const cfg = h.ctx.cfg;
    const proc = spawn(process.execPath, [BIN, 'serve', '--no-api'], {
      env: {
        ...process.env,
        STELLA_DATA_DIR: cfg.dataDir,
        DATABASE_URL: cfg.databaseUrl,
        STELLA_TEMPORAL_ADDRESS: cfg.temporal.address,
        STELLA_TASK_QUEUE: cfg.temporal.taskQueue,
        STELLA_SCHEDULES: 'false',
        STELLA_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));

    const wfId = `graceful-${randomBytes(4).toString('hex')}`;
    const handle = await h.client.workflow.start('bulkIngest', {
      args: [{ tenant: 'default', dir, kind: 'other', artifact: sha256Digest('graceful'), actor: 'test' }, 600],
      taskQueue: cfg.temporal.taskQueue,
      workflowId: wfId,
    });
    // Wait until the single 600-file batch activity is running, then ask the worker to stop.
    const deadline = Date.now() + 90_000;
    for (;;) {
      const d = await handle.describe();
      const pending = d.raw.pendingActivities ?? [];
      if (pending.some((a) => a.activityType?.name === 'bulkIngestBatch')) break;
      if (Date.now() > deadline) throw new Error(`activity never started; worker stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    proc.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);

    // The batch the worker was running when told to stop completed, on its first attempt.
    const events = (await handle.fetchHistory()).events ?? [];
    const completed = events.filter((e) => e.activityTaskCompletedEventAttributes);
    const started = events.filter((e) => e.activityTaskStartedEventAttributes);
    const batchStart = started.find((e) => {
      const sched = events.find((x) => x.eventId?.toString() === e.activityTaskStartedEventAttributes!.scheduledEventId?.toString());
      return sched?.activityTaskScheduledEventAttributes?.activityType?.name === 'bulkIngestBatch';
    });
    expect(batchStart?.activityTaskStartedEventAttributes?.attempt).toBe(1);
    expect(completed.some((e) => e.activityTaskCompletedEventAttributes!.startedEventId?.toString() === batchStart!.eventId?.toString())).toBe(true);
    const rows = await h.ctx.db.query(`SELECT count(*)::int AS n FROM evidence_items WHERE kind='other'`);
    expect(rows.rows[0].n).toBe(600);
    await handle.terminate('test done');
  }, 180_000);
});

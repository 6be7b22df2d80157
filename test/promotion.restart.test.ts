import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { harness, type Harness } from './support/context';
import { workflowBundle } from './support/time-skipping';
import { findTemporalBin, startTemporalDevServer } from '../src/dev/temporal';
import { freePort, stopPid } from '../src/dev/proc';
import { ensureSearchAttributes } from '../src/temporal/client';
import { createActivities } from '../activities';
import { sha256Digest } from '../src/lib/hash';
import { mintPromotionActionToken } from '../src/core/promotion/actions';
import { storeAllEvidence, waitFor } from './support/promotion';

/**
 * A Temporal dev server restarted on its persistent SQLite file keeps the waiting promotion:
 * after the restart the operator's retry finds it and it completes with one record.
 */
describe('promotion survives a Temporal dev server restart (persistent file)', () => {
  let h: Harness | undefined;
  let pid: number | undefined;
  afterAll(async () => {
    await stopPid(pid);
    await h?.close();
  });

  it('waiting-evidence promotion is still there after the restart and completes on retry', async () => {
    h = await harness({ worker: false });
    const dir = mkdtempSync(join(inject('scratch'), 'temporal-restart-'));
    const port = await freePort();
    const boot = async () => {
      const t = await startTemporalDevServer({
        bin: findTemporalBin(process.env.STELLA_TEMPORAL_BIN, false),
        dbFile: join(dir, 'temporal.db'),
        port,
        logFile: join(dir, 'temporal.log'),
      });
      pid = t.pid;
      const connection = await Connection.connect({ address: t.address });
      await ensureSearchAttributes(connection, 'default');
      return { connection, client: new Client({ connection, namespace: 'default' }), address: t.address };
    };
    const runWorker = async (address: string) => {
      const native = await NativeConnection.connect({ address });
      const worker = await Worker.create({ connection: native, taskQueue, workflowBundle: workflowBundle(), activities: createActivities(h!.ctx) });
      const running = worker.run();
      return async () => {
        worker.shutdown();
        await running;
        await native.close();
      };
    };
    const taskQueue = `promo-restart-${randomBytes(4).toString('hex')}`;
    const artifact = sha256Digest(`app@${randomBytes(6).toString('hex')}`);
    const workflowId = `promotion-default-prod-${artifact.slice(7)}`;

    let srv = await boot();
    let stopWorker = await runWorker(srv.address);
    await srv.client.workflow.start('promotion', {
      taskQueue,
      workflowId,
      args: [{ tenant: 'default', artifactDigest: artifact, fromEnv: 'staging', toEnv: 'prod', requestedBy: 'test' }],
    });
    const before = await waitFor(
      () => srv.client.workflow.getHandle(workflowId).query<{ state: string; promotionId: string }>('state'),
      (s) => s.state === 'waiting-evidence',
      'waiting-evidence',
    );

    // Stop everything Temporal, then start the server again on the same file.
    await stopWorker();
    await srv.connection.close();
    await stopPid(pid);
    srv = await boot();
    stopWorker = await runWorker(srv.address);
    try {
      const d = await srv.client.workflow.getHandle(workflowId).describe();
      expect(d.status.name).toBe('RUNNING');
      expect(d.runId).toBe(before.promotionId);
      await storeAllEvidence(h.ctx, 'default', artifact);
      const token = await mintPromotionActionToken(h.ctx.keys, { sub: 'operator', tenant: 'default', promotionId: d.runId, workflowId, action: 'retry' });
      const after = await srv.client.workflow
        .getHandle(workflowId)
        .executeUpdate<{ state: string; attempts: number }, [{ by: string; token: string }]>('retry', { args: [{ by: 'operator', token }] });
      expect(after).toMatchObject({ state: 'promoted', attempts: 2 });
      await srv.client.workflow.getHandle(workflowId).result();
    } finally {
      await stopWorker();
      await srv.connection.close();
    }
    const rows = await h.ctx.db.query('SELECT id, state FROM promotions WHERE artifact_digest=$1', [artifact]);
    expect(rows.rows).toEqual([{ id: before.promotionId, state: 'promoted' }]);
  });
});

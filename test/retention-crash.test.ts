import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { inject } from 'vitest';
import { harness, type Harness } from './support/context';
import { sha256Digest } from '../src/lib/hash';
import { createStellaWorker } from '../workers/worker';

/**
 * A 10,000-item purge whose worker is stopped mid-run: a new worker finishes it with exact
 * counts, exactly one audit entry per purged item, and no blob left behind.
 */
const N = 10_000;
let h: Harness;

beforeAll(async () => {
  h = await harness({ blob: 'fs' });
});
afterAll(async () => h?.close());

describe('retention purge crash/resume', () => {
  it('purges 10,000 expired items across a worker crash with exact counts and audit entries', async () => {
    // Fixture in bulk: blobs written raw, index rows inserted with one statement (old enough to expire).
    const ids: string[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < N; i++) {
      const body = Buffer.from(`retention-crash-item-${i}-${'x'.repeat(i % 50)}`);
      const id = sha256Digest(body);
      ids.push(id);
      sizes.push(body.length);
      await h.ctx.blobs.primary.writeRaw(id, body);
    }
    await h.ctx.db.query(
      `INSERT INTO evidence_items (tenant_id, id, media_type, kind, size_bytes, created_at)
       SELECT 'default', x.id, 'application/octet-stream', 'log', x.size, now() - interval '1000 days' FROM unnest($1::text[], $2::bigint[]) AS x(id, size)`,
      [ids, sizes],
    );
    await h.ctx.db.query(`INSERT INTO evidence_subjects (tenant_id, item_id, artifact_digest) SELECT 'default', id, $2 FROM unnest($1::text[]) AS id`, [
      ids,
      sha256Digest('artifact'),
    ]);
    const totalBytes = sizes.reduce((a, b) => a + b, 0);

    const handle = await h.client.workflow.start('retentionPurge', {
      taskQueue: h.ctx.cfg.temporal.taskQueue,
      workflowId: `crash-${Date.now()}`,
      args: [{ tenant: 'default', actor: 'crash-test', batchSize: 250 }],
    });
    // Wait until some items are purged (progress > 0), then kill the worker mid-run.
    for (;;) {
      const r = await h.ctx.db.query(`SELECT items FROM retention_runs WHERE id=$1`, [handle.workflowId]);
      if (r.rowCount && r.rows[0].items > 0) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    await h.stopWorker();
    const mid = (await h.ctx.db.query(`SELECT items FROM retention_runs WHERE id=$1`, [handle.workflowId])).rows[0].items as number;
    expect(mid).toBeGreaterThan(0);
    expect(mid).toBeLessThan(N);

    // A fresh worker (new process in production) resumes the same run.
    const w = await createStellaWorker(h.ctx, { workflowBundle: { code: readFileSync(inject('workflowBundlePath'), 'utf8') }, shutdownGraceTime: '2s' });
    const running = w.worker.run().finally(() => w.connection.close());
    try {
      const res = (await handle.result()) as { items: number; bytes: number; bytesFreed: number; pendingBlobs: number; status: string };
      expect(res).toMatchObject({ status: 'succeeded', items: N, bytes: totalBytes, bytesFreed: totalBytes, pendingBlobs: 0 });
    } finally {
      w.worker.shutdown();
      await running;
    }
    const st = await h.ctx.db.query(`SELECT state, count(*)::int AS n FROM evidence_items GROUP BY state`);
    expect(st.rows).toEqual([{ state: 'purged', n: N }]);
    const a = await h.ctx.db.query(
      `SELECT count(*)::int AS n, count(DISTINCT target)::int AS d FROM audit_log WHERE action='evidence.purged' AND details->>'runId' = $1`,
      [handle.workflowId],
    );
    expect(a.rows[0]).toEqual({ n: N, d: N });
    const ri = await h.ctx.db.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE blob_done)::int AS done FROM retention_run_items WHERE run_id=$1`, [
      handle.workflowId,
    ]);
    expect(ri.rows[0]).toEqual({ n: N, done: N });
    let left = 0;
    for await (const _ of h.ctx.blobs.primary.list()) left++;
    expect(left).toBe(0);
  });
});

import { extraSchedules } from '../../temporal/schedules';
import { extraMetrics } from '../metrics';
import client from 'prom-client';

// Nightly replay verification of the latest N manifests per tenant (runbook §2.2).
extraSchedules.push((cfg) => [
  {
    id: 'stella-replay-nightly',
    description: 'Nightly verification of the latest replay manifests per tenant',
    workflowType: 'replayVerifyNightly',
    args: [{ latestN: cfg.schedules.replayLatestN, concurrency: 4 }],
    cron: ['30 3 * * *'],
  },
]);

// Replay metrics, read from the verification record so every API replica agrees.
extraMetrics.push((registry, db) => {
  if (!db) return;
  new client.Gauge({
    name: 'replay_verify_total',
    help: 'Replay manifest verifications by result (monotonic count from the verification record)',
    labelNames: ['result'],
    registers: [registry],
    async collect() {
      this.reset();
      this.set({ result: 'passed' }, 0);
      this.set({ result: 'failed' }, 0);
      const r = await db.query(`SELECT result, count(*)::int AS n FROM replay_verifications GROUP BY result`).catch(() => ({ rows: [] as { result: string; n: number }[] }));
      for (const row of r.rows) this.set({ result: row.result }, row.n);
    },
  });
  new client.Gauge({
    name: 'replay_bundle_size_bytes',
    help: 'Size of the latest replay bundles, by bundle',
    labelNames: ['bundle'],
    registers: [registry],
    async collect() {
      this.reset();
      const r = await db.query(`SELECT coalesce(sum(input_size),0)::bigint AS i, coalesce(sum(output_size),0)::bigint AS o, count(*)::int AS n FROM replay_runs`).catch(() => ({ rows: [] as any[] }));
      if (r.rows[0]) {
        this.set({ bundle: 'input' }, Number(r.rows[0].i));
        this.set({ bundle: 'output' }, Number(r.rows[0].o));
      }
    },
  });
});
